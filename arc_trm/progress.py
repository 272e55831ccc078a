"""Progress bars that suit where the output goes: a live bar on a terminal; on a file or a pipe (a
cluster job's log, the Kaggle notebook's log, ``| tee``) one plain line every
``ARC_TRM_PROGRESS_S`` seconds (default 30), without the carriage returns a redrawn bar leaves in
a log."""

from __future__ import annotations

import os
import re
import sys

from tqdm import tqdm


_CURSOR = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")     # the moves tqdm makes between nested bars


class _Lines:
    """A stream for tqdm that turns each redraw into a whole line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        for line in _CURSOR.sub("", text).replace("\r", "\n").split("\n"):
            if line.strip():
                self.stream.write(line.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class Bar(tqdm):
    """tqdm with :meth:`retotal`: a bar whose end moves (a time limit, a re-plan) redraws at once on a
    terminal, and in a log waits for its next line, so a log still gets one line per interval."""

    live = False

    def retotal(self, total: int) -> None:
        self.total = total
        if self.live:
            self.refresh()


def bar(total: int, desc: str, unit: str, enabled: bool = True, initial: int = 0) -> Bar:
    stream = sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        b = Bar(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True,
                file=stream)
        b.live = True
        return b
    every = float(os.environ.get("ARC_TRM_PROGRESS_S") or 30)
    return Bar(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, file=_Lines(stream),
               mininterval=every, maxinterval=max(every, 10.0), miniters=1, ncols=100, ascii=True)
