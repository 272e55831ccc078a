"""Stage 3: the accelerate training loop (shared with test-time training), checkpoints, metrics."""
