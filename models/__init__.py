"""spikeport reference simulator: neurons, synapses, networks, learning rules, losses."""
