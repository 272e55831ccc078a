"""Stage 2: the TRM network, its losses, the sparse puzzle embeddings, optimizers and EMA."""
