"""Ctrl-C and SIGTERM for the long commands (train, predict): the first signal asks the command to stop
at its next safe point (before the next step, between two inference batches) and finish properly:
save, vote over what finished, write; the second stops at once, keeping what was written before. A
first signal while torch compiles stops the compilation at once (:class:`arc_trm.clock.CompileInterrupted`):
the command then stops as at a safe point, without that step or batch. The
signal is kept, so the command exits as a shell expects (130 for SIGINT, 143 for SIGTERM)."""

from __future__ import annotations

import os
import signal
import time

from arc_trm import clock


class StopFlag:
    """``signum``: the first signal received (0: none). ``what``: what the command does on a stop, for
    the line the first signal prints; ``saved()``: what a second signal keeps."""

    def __init__(self, verb: str, what: str, saved=lambda: "", quiet: bool = False):
        self.signum = 0
        self.at = 0.0             # when the first signal came (time.time())
        self.verb, self.what, self.saved, self.quiet = verb, what, saved, quiet
        self._old = {}

    def __enter__(self) -> "StopFlag":
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: the caller handles signals
                pass
        return self

    def __bool__(self) -> bool:
        return bool(self.signum)

    def _handle(self, signum, frame):
        if self.signum:
            raise KeyboardInterrupt
        self.signum, self.at = signum, time.time()
        compiling = clock.compiling_now()
        if not self.quiet:      # os.write: a print here could land inside another print
            kept = self.saved()
            what = "torch is compiling: stopping the compilation now" if compiling else self.what
            os.write(2, (f"\narc-trm {self.verb}: {signal.Signals(signum).name}: {what}; send it again to stop "
                         f"at once{f' ({kept})' if kept else ''}\n").encode())
        if compiling:           # no safe point of ours comes before the compilation ends, minutes later maybe
            clock.interrupt_compilation(signum)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
