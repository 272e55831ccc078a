"""Stage 1: ARC tasks → validated grids → augmentation plans → puzzle-ID-keyed token canvases."""
