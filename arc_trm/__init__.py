"""arc-trm: a Tiny Recursive Model pipeline for ARC-AGI (ingest → train → predict → package)."""

import time as _time

__version__ = "0.1.0"

# When this process began arc-trm's work (before torch's import, seconds on some machines): a
# command's --time-budget counts from here, or from ARC_TRM_STARTED_AT when whoever times it set it.
IMPORTED_AT = _time.time()
