"""arc-trm: a Tiny Recursive Model pipeline for ARC-AGI (ingest → train → predict → package)."""

__version__ = "0.1.0"
