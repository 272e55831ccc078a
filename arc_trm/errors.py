"""The one exception type every stage raises for bad input."""

from __future__ import annotations


class ArcTrmError(Exception):
    """Bad input or unusable artefact. Carries where (file, task, pair) and why."""

    def __init__(self, reason: str, *, task_id: str | None = None, source: str | None = None,
                 pair: str | None = None):
        self.reason = reason
        self.task_id = task_id
        self.source = source
        self.pair = pair
        where = []
        if source:
            where.append(f"file {source}")
        if task_id:
            where.append(f"task {task_id}")
        if pair:
            where.append(pair)
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


class TaskError(ArcTrmError):
    """A single ARC task is malformed; batch commands report it, skip it and go on."""


class Interrupted(Exception):
    """A command stopped by SIGINT or SIGTERM after saving what it had; the CLI prints the message
    as one line and exits 128 + the signal number (130, 143), as a shell expects."""

    def __init__(self, signum: int, message: str):
        self.signum = signum
        super().__init__(message)
