"""``arc-trm show``: a PNG of a task's pairs, its test inputs, the two attempts and the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from arc_trm.atomic import replacing_file
from arc_trm.data.tasks import load_spec
from arc_trm.errors import ArcTrmError
from arc_trm.infer.submission import read

# The ARC palette, colour 0..9.
PALETTE = ["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B",
           "#7FDBFF", "#870C25"]


def show(spec: str, task_id: str, out: Path, submission: Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    sub_all = read(submission) if submission else {}
    report = load_spec(spec)
    task = next((t for t in report.tasks if t.task_id == task_id), None)
    if task is None:
        bad = next((e for e in report.errors
                    if e.task_id == task_id or (e.source and Path(e.source).stem == task_id)), None)
        if bad is not None:
            raise ArcTrmError(f"malformed task ({bad})", task_id=task_id)
        near = sorted(t.task_id for t in report.tasks if t.task_id.startswith(task_id[:2]))[:5]
        hint = f"; similar ids: {', '.join(near)}" if near else f"; it holds {len(report.tasks)} tasks"
        raise ArcTrmError(f"no such task in {spec}{hint}", task_id=task_id)
    if submission and task_id not in sub_all:
        raise ArcTrmError("the submission has no entry for this task", task_id=task_id, source=str(submission))
    sub = sub_all.get(task_id, [])
    rows = [("train", i, o, None, None) for i, o in task.train]
    for k, (i, o) in enumerate(zip(task.test_inputs, task.test_outputs)):
        e = sub[k] if k < len(sub) else {}
        rows.append(("test", i, o, e.get("attempt_1"), e.get("attempt_2")))
    cmap = ListedColormap(PALETTE)
    fig, axes = plt.subplots(len(rows), 4, figsize=(10, 2.6 * len(rows)), squeeze=False)
    for r, (kind, i, o, a1, a2) in enumerate(rows):
        for c, (title, g) in enumerate([(f"{kind} input", i), ("truth" if kind == "test" else "output", o),
                                        ("attempt 1", a1), ("attempt 2", a2)]):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if g is None:
                ax.axis("off")
                continue
            g = np.asarray(g)
            ax.imshow(g, cmap=cmap, vmin=0, vmax=9)
            # thin cell lines, so cells can be counted
            ax.set_xticks(np.arange(-0.5, g.shape[1], 1), minor=True)
            ax.set_yticks(np.arange(-0.5, g.shape[0], 1), minor=True)
            ax.grid(which="minor", color="#555555", linewidth=0.5)
            ax.tick_params(which="minor", length=0)
            if kind == "test" and c >= 2 and o is not None:
                ok = g.shape == o.shape and (g == o).all()
                title += " ✓" if ok else " ✗"
                for s in ax.spines.values():
                    s.set_edgecolor("green" if ok else "red")
                    s.set_linewidth(3)
            ax.set_title(title, fontsize=9)
    fig.suptitle(task_id)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replacing_file(out) as tmp:       # a full disk leaves no 0-byte picture
            fig.savefig(tmp, dpi=80, format="png")
    finally:
        plt.close(fig)
    return out
