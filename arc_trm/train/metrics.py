"""Metric logging: a JSONL file in the run folder (always), accelerate trackers (on request)
and a PNG of the training curves."""

from __future__ import annotations

from pathlib import Path

import orjson


class MetricLog:
    def __init__(self, path: Path, accelerator=None, enabled: bool = True):
        self.path = Path(path)
        self.acc = accelerator
        self.enabled = enabled

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("ab") as f:
            f.write(orjson.dumps(record) + b"\n")
        if self.acc is not None and self.acc.trackers:
            numeric = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
            self.acc.log(numeric, step=record.get("step"))


def read_log(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def plot_curves(log_path: Path, png_path: Path) -> Path | None:
    """Loss, exact accuracy and evaluation pass@k against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
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
    if evals:
        for key in ("pass@1", "pass@2", "copy_input_pass@2"):
            if key in evals[0]:
                axes[2].plot([r["step"] for r in evals], [r[key] for r in evals], marker="o", label=key)
        axes[2].legend()
    axes[2].set(title="evaluation on test inputs", xlabel="step", ylim=(0, 1.02))
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return Path(png_path)
