"""``arc-trm report --runs RUN...``: training runs side by side on one self-contained page.

Per run: its core and presets, dense parameters and puzzle-table rows, steps and examples seen, the
device and device-hours (from the ``start`` records train writes for each stretch of a run), the split
best/ was chosen on, and best/'s pass@2 on the scored tasks with its 95 % interval; then every run's
curves overlaid against examples seen (training loss, pass@2 on the scored tasks), since runs with
different batch sizes compare by examples, not by steps. Figures of the selection split never appear
here except marked.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

from arc_trm.errors import ArcTrmError
from arc_trm.infer.report import _CSS, _table
from arc_trm.infer.score import DEFINITIONS
from arc_trm.infer.selection import MARK, SELECTION
from arc_trm.jsonfile import read_json
from arc_trm.train.metrics import read_log


@dataclass
class RunSummary:
    folder: str
    name: str
    model_preset: str
    core: str
    parameters: int                   # dense weights (the EMA copy not counted)
    table_rows: int                   # puzzle-embedding rows (one per augmented task)
    steps: int
    examples: int
    device: str
    processes: int
    device_hours: float
    selection: str                    # how best/'s selection split was drawn ("" when best/ was not kept)
    best: dict = field(default_factory=dict)            # best_score.json: step, scored pass@2 and interval
    loss: list[tuple[int, float]] = field(default_factory=list)        # (examples, training loss)
    scored: list[tuple[int, float]] = field(default_factory=list)      # (examples, scored pass@2)
    selected: list[tuple[int, float]] = field(default_factory=list)    # (examples, selection pass@2)


def _weights(folder: Path) -> tuple[int, int]:
    """Dense parameters and table rows of the run's best/ (else last/) checkpoint, from the files' headers."""
    from safetensors import safe_open

    for name in ("best", "last"):
        ck = folder / name
        if (ck / "model.safetensors").is_file():
            with safe_open(ck / "model.safetensors", framework="pt") as f:
                dense = sum(_numel(f.get_slice(k).get_shape()) for k in f.keys() if not k.startswith("ema."))
            rows = 0
            if (ck / "puzzle_embeddings.safetensors").is_file():
                with safe_open(ck / "puzzle_embeddings.safetensors", framework="pt") as f:
                    rows = f.get_slice("weight").get_shape()[0]
            return dense, rows
    return 0, 0


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def device_time(records: list[dict]) -> tuple[str, int, float]:
    """(device, processes, device-hours): each stretch of the run (a ``start`` record, or elapsed time
    starting over in an older run's log) counts its longest elapsed time times its processes."""
    device, processes, hours, span, procs = "unknown (an older arc-trm's run)", 1, 0.0, 0.0, 1
    for r in records:
        if r.get("kind") == "start":
            hours += span * procs / 3600
            span, procs = 0.0, int(r.get("processes", 1))
            device, processes = str(r.get("device", device)), procs
        elif r.get("kind") == "train" and isinstance(r.get("elapsed_s"), (int, float)):
            if r["elapsed_s"] < span:         # a resumed stretch without a start record
                hours += span * procs / 3600
            span = float(r["elapsed_s"])
    return device, processes, hours + span * procs / 3600


def read_run(folder: Path) -> RunSummary:
    """What the page shows of one run folder; one error naming the folder when it is not a run."""
    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "metrics.jsonl").is_file():
        raise ArcTrmError("is not a training run folder (no config.json and metrics.jsonl)", source=str(folder))
    cfg = read_json(folder / "config.json", "run config", dict)
    model, train = cfg.get("model", {}), cfg.get("train", {})
    records = read_log(folder / "metrics.jsonl")
    batch = int(train.get("global_batch_size", 0))
    for r in records:                       # the batch of the run's last stretch (a start record says it)
        if r.get("kind") == "start":
            batch = int(r.get("global_batch_size", batch))
    steps = max([int(r["step"]) for r in records if r.get("kind") in ("train", "eval")] or [0])
    device, processes, hours = device_time(records)
    dense, rows = _weights(folder)
    best = read_json(folder / "best_score.json", "best score", dict) if (folder / "best_score.json").is_file() else {}
    rule = ""
    if (folder / "best" / "info.json").is_file():
        rule = str((read_json(folder / "best" / "info.json", "checkpoint info", dict).get("chosen_on") or {})
                   .get("rule", ""))
    ex = (lambda r: int(r["step"]) * batch)   # noqa: E731
    return RunSummary(
        str(folder), str(cfg.get("name", "")), str(cfg.get("model_preset", "")), str(model.get("core", "trm")),
        dense, rows, steps, steps * batch, device, processes, hours, rule, best,
        [(ex(r), float(r["loss"])) for r in records if r.get("kind") == "train" and "loss" in r],
        [(ex(r), float(r["pass@2"])) for r in records if r.get("kind") == "eval" and "pass@2" in r],
        [(ex(r), float(r[SELECTION + "pass@2"])) for r in records
         if r.get("kind") == "eval" and SELECTION + "pass@2" in r])


def curves_png(runs: list[RunSummary]) -> bytes:
    """Every run's training loss and scored pass@2 against examples seen, overlaid (the selection split's
    pass@2 dashed and labelled as what best/ was chosen by)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    for k, r in enumerate(runs):
        colour = f"C{k % 10}"
        label = Path(r.folder).name
        if r.loss:
            axes[0].plot(*zip(*r.loss), color=colour, label=label)
        if r.scored:
            axes[1].plot(*zip(*r.scored), "-o", color=colour, label=f"{label}: scored tasks")
        if r.selected:
            axes[1].plot(*zip(*r.selected), "--", color=colour, alpha=0.5, label=f"{label}: selection (chosen on)")
    axes[0].set(title="training loss", xlabel="examples seen", yscale="log")
    axes[1].set(title="pass@2 on the scored tasks", xlabel="examples seen", ylim=(-0.02, 1.02))
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=90, format="png")
    plt.close(fig)
    return buf.getvalue()


def runs_page(runs: list[RunSummary]) -> str:
    esc = html.escape
    rows = []
    for r in runs:
        b = r.best
        if b.get("tasks"):
            score = (f'<span class=pass2 data-run="{esc(Path(r.folder).name)}">{b["pass@2"]:.4f}</span> over '
                     f'{b["tasks"]} tasks, 95 % interval {b["pass@2_lo"]:.2f}-{b["pass@2_hi"]:.2f} (step {b["step"]})')
        elif b:
            score = f"none: every test task was a selection task [{esc(MARK)}]"
        else:
            last = r.scored[-1][1] if r.scored else None
            score = "no best/" + (f"; last evaluation {last:.4f} (no interval recorded)" if last is not None else "")
        split = (f"{esc(r.selection)}; pass@2 there {b.get(SELECTION + 'pass@2', 0):.4f} "
                 f"<span class=chosen>chosen on</span>" if r.selection else "none (best/ not kept)")
        rows.append([f"<b>{esc(Path(r.folder).name)}</b><br><code>{esc(r.folder)}</code>",
                     f"{esc(r.core)}<br>{esc(r.name)} / {esc(r.model_preset or '(own model)')}",
                     f"{r.parameters / 1e6:.3f} M<br>{r.table_rows} table rows", f"{r.steps}",
                     f"{r.examples:,}", f"{esc(r.device)} x{r.processes}", f"{r.device_hours:.3f}", split, score])
    table = _table(["run", "core / run preset / model preset", "parameters (dense)", "steps", "examples seen",
                    "device", "device-hours", "best/ chosen on", "best/: pass@2 on the scored tasks"], rows, "runs")
    img = base64.b64encode(curves_png(runs)).decode()
    defs = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in DEFINITIONS.items() if k == "pass@2")
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>arc-trm runs: {len(runs)}</title><style>{_CSS}</style></head><body>
<h1>arc-trm runs</h1><p>{len(runs)} training run(s). Each best/ is chosen on its run's selection split and scored on
the other test tasks; the interval is the exact binomial (Clopper-Pearson) one over those tasks, so two runs whose
intervals overlap widely cannot be told apart by these numbers.</p>
{table}<ul class=note>{defs}<li>device-hours: wall time of each stretch of the run times its processes.</li></ul>
<h2>Curves</h2><img alt="curves of every run" src="data:image/png;base64,{img}">
</body></html>
"""
