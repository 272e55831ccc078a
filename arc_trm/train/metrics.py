"""Metric logging: a JSONL file in the run folder (always), accelerate trackers (on request)
and a PNG of the training curves."""

from __future__ import annotations

from pathlib import Path

import orjson

from arc_trm.atomic import failure_reason, replacing_file, write_bytes
from arc_trm.errors import ArcTrmError


class MetricLog:
    def __init__(self, path: Path, accelerator=None, enabled: bool = True):
        self.path = Path(path)
        self.acc = accelerator
        self.enabled = enabled

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        try:
            with self.path.open("ab") as f:
                f.write(orjson.dumps(record) + b"\n")
        except OSError as e:      # a torn last line is dropped on resume (truncate_after)
            raise ArcTrmError(f"could not append to {self.path.name}: {failure_reason(e, self.path.parent)}; the "
                              "lines before are intact", source=str(self.path)) from None
        if self.acc is not None and self.acc.trackers:
            numeric = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
            self.acc.log(numeric, step=record.get("step"))


    def truncate_after(self, step: int) -> None:
        """Drop what a resumed run will log again (records after ``step``) and a torn last line,
        rewriting the file atomically; a resumed run's curves then never repeat a step."""
        if not self.path.is_file():
            return
        raw = self.path.read_bytes()
        kept = [line for line in raw.splitlines() if (rec := _record(line)) is not None and rec.get("step", 0) <= step]
        data = b"".join(line + b"\n" for line in kept)
        if data != raw:
            write_bytes(self.path, data)


def _record(line: bytes) -> dict | None:
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


def read_log(path: Path, warn=None) -> list[dict]:
    """The records of a metrics file; a line that is not a JSON record (what a kill during a write
    leaves) is skipped, and ``warn`` is told which."""
    path = Path(path)
    if not path.is_file():
        return []
    records, bad = [], []
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if line.strip():
            rec = _record(line)
            records.append(rec) if rec is not None else bad.append(n)
    if bad and warn is not None:
        warn(f"{path}: skipped {len(bad)} unreadable line(s) ({', '.join(map(str, bad[:5]))}), "
             "as a write cut short by a kill leaves them")
    return records


def plot_curves(log_path: Path, png_path: Path, warn=None) -> Path | None:
    """Loss, exact accuracy and evaluation pass@k against step; the PNG replaces the old one only
    when it is complete."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path, warn)
    number = (lambda r, k: isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool))  # noqa: E731
    train = [r for r in records if r.get("kind") == "train"
             and all(number(r, k) for k in ("step", "loss", "exact_accuracy", "cell_accuracy"))]
    evals = [r for r in records if r.get("kind") == "eval" and number(r, "step")]
    if not train:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    steps = [r["step"] for r in train]
    axes[0].plot(steps, [r["loss"] for r in train])
    axes[0].set(title="training loss (per sample)", xlabel="step", yscale="log")
    axes[1].plot(steps, [r["exact_accuracy"] for r in train], label="exact (halted samples)")
    axes[1].plot(steps, [r["cell_accuracy"] for r in train], label="cell")
    axes[1].set(title="training accuracy", xlabel="step", ylim=(0, 1.02))
    axes[1].legend()
    if evals:   # the scored tasks' figures; the selection split's (what best/ is chosen by) dashed, named so
        for key, label, style in (("pass@1", "pass@1", "-"), ("pass@2", "pass@2", "-"),
                                  ("copy_input_pass@2", "copy input pass@2", "-"),
                                  ("selection/pass@2", "pass@2 on the tasks best/ is chosen on", "--")):
            got = [r for r in evals if number(r, key)]
            if got:
                axes[2].plot([r["step"] for r in got], [r[key] for r in got], style, marker="o", label=label)
        axes[2].legend()
    axes[2].set(title="evaluation on test inputs (scored tasks)", xlabel="step", ylim=(0, 1.02))
    fig.tight_layout()
    try:
        with replacing_file(Path(png_path)) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
    finally:
        plt.close(fig)
    return Path(png_path)
