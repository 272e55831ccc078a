"""Command-level converters above the model: reading checkpoints other code bases wrote (through the
layouts each core declares) into arc-trm checkpoints."""
