"""Preset TOML files (the repository's configs/ folder, shipped as arc_trm.presets)."""
