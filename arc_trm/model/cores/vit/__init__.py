"""The vision cores: VARC's ViT ("ARC Is a Vision Problem!", arXiv 2511.14761; lillian039/VARC) and its looped
form, Loop-ViT (WenjieShu/LoopViT). A grid is drawn on a pixel canvas (arc_trm/data/pixel_canvas.py) and
every pixel's colour is predicted in one pass."""
