"""spikeport toolchain: IR, lowering, quantization, passes, verify, report, CLI."""
