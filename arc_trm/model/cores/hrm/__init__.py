"""HRM: the Hierarchical Reasoning Model (arXiv 2506.21734), as the TRM repository's copy of sapientinc/HRM
computes it."""
