"""What the Kaggle notebook runs before arc-trm is installed, in the standard library only and importing
nothing outside this package (relative imports only): the notebook writes these files into a folder
and imports them from there; installed arc-trm imports them as ``arc_trm.standalone``. The time rules
the job and arc-trm's clock share live here once (:mod:`.timeshare`)."""
