"""distrl: distributed-RL primitives (policy evaluators, parameter servers, all-reduce)
on Ray and PyTorch, written to be read. It never imports studylog."""

__version__ = "0.1.0"
