"""spikeport backends: the fixed/float emulator and the Lava (lava-nc) backend."""
