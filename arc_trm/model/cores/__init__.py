"""The cores, one folder each: its module, its config section (``settings.py``, plain data that
``arc_trm/config.py`` imports), its cost (FLOPs per step, what the memory estimate counts), its
reference checkpoint layout, and ``core.py`` binding them into one :class:`arc_trm.model.core.Core`.
``registry.py`` lists them."""
