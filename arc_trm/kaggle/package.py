"""``arc-trm package``: checkpoint → ``submission/`` ready for ``kaggle datasets create`` and
``kaggle kernels push``.

Layout (the dataset is flat, so Kaggle mounts it as is and no ``-r zip`` folder handling is
involved)::

    submission/
      README.md                   upload commands and what to check
      dataset/                    the offline dataset the notebook attaches
        dataset-metadata.json
        arc_trm_payload.json      marker the notebook searches for, version, budget, plan
        model.safetensors ...     the checkpoint, its config resolved with the predict preset
        *.whl                     arc-trm and the dependencies the Kaggle image lacks
      notebook/
        kernel-metadata.json
        <kernel-slug>.ipynb

With several checkpoints (``--checkpoint A --checkpoint B``) each one's files carry a prefix,
``ckpt_0--model.safetensors``, ``ckpt_1--model.safetensors``..., so the dataset stays flat; the
payload lists them with their budget shares, and the notebook predicts with each and ensembles.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from slugify import slugify

import arc_trm
from arc_trm.atomic import MARKER, check_owned, replacing_folder, write_bytes
from arc_trm.config import RunConfig, apply_preset_tables
from arc_trm.errors import ArcTrmError
from arc_trm.kaggle import image, metadata, wheels
from arc_trm.standalone.job import PAYLOAD_MARKER
from arc_trm.kaggle.notebook import build_notebook, write_notebook
from arc_trm.kaggle.budget import L4X4, project
from arc_trm.kaggle.competitions import competition_warnings
from arc_trm.model import checkpoint as ckpt_io
from arc_trm.paths import check_io, place


@dataclass
class PackageOptions:
    checkpoint: Path | list[Path]               # one, or several to ensemble on Kaggle
    out: Path
    competition: str
    owner: str
    preset: str = "kaggle-l4x4"                 # its [ttt] and [predict] tables are applied
    time_budget_h: float | None = None          # default: the preset's predict.time_budget_s
    placeholder_budget_h: float | None = None   # shorter budget for the unscored public run
    dataset_slug: str = "arc-trm-payload"
    dataset_title: str = "arc-trm payload"
    kernel_title: str = "arc-trm TRM submission"
    machine_shape: str = metadata.L4X4_SHAPE
    wheelhouse: list[Path] = field(default_factory=list)
    offline: bool = False                       # take dependency wheels only from wheelhouse
    split: list[float] | None = None            # budget shares of the checkpoints (default: by planned FLOPs)

    @property
    def checkpoints(self) -> list[Path]:
        return [Path(c) for c in self.checkpoint] if isinstance(self.checkpoint, (list, tuple)) else [Path(self.checkpoint)]


@dataclass
class PackagedCheckpoint:
    source: Path                                # the checkpoint folder it came from
    prefix: str                                 # its files' prefix in the dataset ("" when it is the only one)
    config: RunConfig                           # resolved with the preset
    projection: dict
    planned_s: float                            # the FLOP projection's TTT + inference time on 4x L4
    share: float                                # of the budget
    steps: int | None

    @property
    def name(self) -> str:
        """``ckpt_K``: its folder on Kaggle and its name in the log ("" when it is the only one)."""
        return self.prefix.rstrip("-")


@dataclass
class Package:
    out: Path
    dataset: Path
    notebook: Path
    wheels: list[str]
    checkpoints: list[PackagedCheckpoint]
    warnings: list[str] = field(default_factory=list)
    substitutions: list[str] = field(default_factory=list)   # "accelerate 1.15.0 for Python 3.10 (1.16.0 has ...)"

    @property
    def config(self) -> RunConfig:
        return self.checkpoints[0].config


def resolved_config(cfg: RunConfig, preset: str, time_budget_h: float | None) -> RunConfig:
    """The checkpoint's config with the preset's ``[ttt]`` and ``[predict]`` tables on top: the
    model and data stay as trained."""
    apply_preset_tables(cfg, preset, ("ttt", "predict"))
    if time_budget_h is not None:
        cfg.predict.time_budget_s = float(time_budget_h) * 3600
    if cfg.predict.time_budget_s <= 0:
        raise ArcTrmError("the Kaggle job needs a time budget: set predict.time_budget_s in the preset "
                          "or pass --time-budget HOURS", source=preset)
    if cfg.predict.time_budget_s > 12 * 3600:
        raise ArcTrmError(f"time budget {cfg.predict.time_budget_s / 3600:.2f} h exceeds Kaggle's 12 h limit")
    return cfg


def budget_shares(planned_s: list[float], split: list[float] | None) -> list[float]:
    """Each checkpoint's share of the budget: ``split`` normalised, else in proportion to the
    FLOP projection of its TTT and inference (a URM next to a TRM gets more time)."""
    n = len(planned_s)
    if split is not None:
        if len(split) != n:
            raise ArcTrmError(f"--split has {len(split)} shares for {n} checkpoints")
        if any(not (x > 0) for x in split):
            raise ArcTrmError(f"--split shares must be positive, got {split}")
        weights = list(split)
    else:
        weights = [max(p, 1e-9) for p in planned_s]
    return [w / sum(weights) for w in weights]


def _checkpoint(src: Path, opts: PackageOptions, prefix: str) -> tuple[PackagedCheckpoint, list[str]]:
    folder = ckpt_io.resolve(src)
    ck = ckpt_io.load(folder)                     # refuses a missing or corrupt checkpoint up front
    cfg = resolved_config(ck.cfg, opts.preset, opts.time_budget_h)
    plan = project(cfg.model, cfg.ttt, cfg.predict, L4X4, canvas=ck.canvas)
    name = f"{src}: " if prefix else ""
    warnings = []
    if ck.canvas < 30:
        warnings.append(f"{name}the checkpoint's canvas is {ck.canvas}x{ck.canvas}: hidden tasks with larger grids "
                        "get fallback answers (train with --canvas 30 for a real entry)")
    return PackagedCheckpoint(folder, prefix, cfg, plan.as_dict(), plan.total_s, 1.0, ck.info.get("step")), warnings


README_HEAD = "# Kaggle upload:"


def check_package_paths(opts: PackageOptions, checkpoints: list[Path]) -> None:
    """Before any slow work: what package writes in ``--out`` (``dataset/``, ``notebook/``, ``README.md``)
    is none of its inputs, and each is absent or an earlier package's (another file of that name is the
    user's, and stays)."""
    out = Path(opts.out)
    inputs = [place("--checkpoint", c, whole=True) for c in checkpoints]
    inputs += [place("--wheelhouse", w, whole=True) for w in opts.wheelhouse]
    if opts.preset.endswith(".toml"):
        inputs.append(place("--preset", opts.preset))
    check_io(inputs, [place("--out", out / name) for name in ("dataset", "notebook", "README.md")])
    check_owned(out / "dataset", "package-dataset")
    check_owned(out / "notebook", "package-notebook")
    readme = out / "README.md"
    if readme.exists():
        try:
            ours = readme.is_file() and readme.read_text(errors="replace").startswith(README_HEAD)
        except OSError:
            ours = False
        if not ours:
            raise ArcTrmError("holds a README.md that arc-trm did not write (package writes its upload guide there); "
                              "choose another --out", source=str(out))


def package(opts: PackageOptions) -> Package:
    sources = opts.checkpoints
    if not sources:
        raise ArcTrmError("package needs a checkpoint")
    several = len(sources) > 1
    if opts.split is not None and not several:
        raise ArcTrmError("--split shares the budget between several checkpoints; give --checkpoint more than once")
    check_package_paths(opts, [ckpt_io.resolve(src) for src in sources])
    packed, warnings = [], competition_warnings(opts.competition)
    for k, src in enumerate(sources):
        pc, w = _checkpoint(src, opts, f"ckpt_{k}--" if several else "")
        packed.append(pc)
        warnings += w
    same = {pc.source.resolve() for pc in packed}
    if len(same) < len(packed):
        raise ArcTrmError("the same checkpoint is given twice; an ensemble needs different checkpoints")
    for pc, share in zip(packed, budget_shares([pc.planned_s for pc in packed], opts.split if several else None)):
        pc.share = share
    budget_s = packed[0].config.predict.time_budget_s
    planned_s = sum(pc.planned_s for pc in packed)
    if planned_s > budget_s:
        warnings.append(f"the FLOP projection ({planned_s / 3600:.2f} h on 4x L4"
                        + (f" for {len(packed)} checkpoints" if several else "")
                        + ") exceeds the budget: TTT and inference will be cut by the deadline")

    out = Path(opts.out)
    dataset, notebook_dir = out / "dataset", out / "notebook"
    ds_meta = metadata.dataset_metadata(opts.owner, opts.dataset_slug, opts.dataset_title)
    nb_file = f"{slugify(opts.kernel_title)}.ipynb"
    k_meta = metadata.kernel_metadata(opts.owner, opts.kernel_title, nb_file, opts.competition,
                                      ds_meta["id"], opts.machine_shape)
    metadata.check(k_meta, ds_meta)              # before any slow work

    # Built beside the old package and swapped in only when complete: a failure (a missing wheel, a
    # full disk, Ctrl-C) leaves the previous package as it was.
    out.mkdir(parents=True, exist_ok=True)
    with replacing_folder(dataset, "package-dataset") as ds_tmp, \
            replacing_folder(notebook_dir, "package-notebook") as nb_tmp:
        for pc in packed:
            for f in pc.source.iterdir():
                if f.is_file() and f.name not in ("config.json", MARKER):
                    shutil.copy2(f, ds_tmp / f"{pc.prefix}{f.name}")
            (ds_tmp / f"{pc.prefix}config.json").write_bytes(orjson.dumps(pc.config.to_dict(),
                                                                          option=orjson.OPT_INDENT_2))
        whl = [wheels.project_wheel(ds_tmp, opts.wheelhouse)]
        deps = wheels.dependency_wheels(ds_tmp, wheelhouse=opts.wheelhouse, offline=opts.offline)
        whl += deps.files
        notes = [s.line() for s in deps.substitutions]
        names = sorted({w.name for w in whl})
        packages = ["arc-trm", *image.SHIPPED]
        payload = {"version": arc_trm.__version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "time_budget_s": budget_s, "competition": opts.competition,
                   "placeholder_time_budget_s": opts.placeholder_budget_h * 3600 if opts.placeholder_budget_h else None,
                   "checkpoint_steps": packed[0].steps, "wheels": names, "packages": packages,
                   "pythons": list(wheels.PYTHONS), "image_tested": image.tested_versions(),
                   "substitutions": [vars(s) for s in deps.substitutions],
                   "projection_4xL4_from_flops": packed[0].projection}
        if several:
            payload["checkpoints"] = [
                {"prefix": pc.prefix, "dir": pc.name, "source": str(pc.source), "share": round(pc.share, 6),
                 "weight": 1.0, "steps": pc.steps, "model": pc.config.model.describe(),
                 "projection_4xL4_from_flops": pc.projection} for pc in packed]
            payload["split"] = "explicit" if opts.split else "planned FLOPs"
        (ds_tmp / PAYLOAD_MARKER).write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
        (ds_tmp / "dataset-metadata.json").write_bytes(orjson.dumps(ds_meta, option=orjson.OPT_INDENT_2))

        cfg, plan = packed[0].config, packed[0].projection
        if several:
            summary = (f"Payload: arc-trm {arc_trm.__version__}, time budget {budget_s / 3600:.2f} h, "
                       f"{len(packed)} checkpoints, each predicting in its share of the budget, then ensembled: "
                       + "; ".join(f"`{pc.name}` {pc.config.model.describe()}, {pc.share:.0%}" for pc in packed)
                       + ".")
        else:
            summary = (f"Payload: arc-trm {arc_trm.__version__}, time budget {budget_s / 3600:.2f} h, "
                       f"TTT `{cfg.ttt.mode}` ({plan['ttt_steps']} steps x {cfg.ttt.global_batch_size}), "
                       f"{plan['views_per_input']} views per test input, strategy `{cfg.predict.strategy}`.")
        write_notebook(build_notebook(opts.kernel_title, summary), nb_tmp / nb_file)
        (nb_tmp / "kernel-metadata.json").write_bytes(orjson.dumps(k_meta, option=orjson.OPT_INDENT_2))
    write_bytes(out / "README.md", _readme(opts, ds_meta, k_meta, packed).encode())
    return Package(out, dataset, notebook_dir / nb_file, names, packed, warnings, notes)


def _readme(opts: PackageOptions, ds_meta: dict, k_meta: dict, packed: list[PackagedCheckpoint]) -> str:
    cfg = packed[0].config
    if len(packed) == 1:
        plan = packed[0].projection
        job = f"""- TTT `{cfg.ttt.mode}`: {cfg.ttt.embedding_steps} embedding + {cfg.ttt.full_steps} full steps{' per task' if cfg.ttt.scope == 'task' else ''} at global batch
  {cfg.ttt.global_batch_size}, {cfg.ttt.augmentations} augmentations per task;
- {plan['views_per_input']} views per test input, strategy `{cfg.predict.strategy}`;
- budget {cfg.predict.time_budget_s / 3600:.2f} h from notebook start; FLOP projection on 4x L4:
  {plan['projected_total_h']} h (TTT {plan['projected_ttt_h']} h, inference {plan['projected_inference_h']} h)."""
        logs = "`/kaggle/working/arc_trm/predict.log` holds predict's full output"
        source = f"`{packed[0].source}`"
    else:
        rows = "\n".join(f"| `{pc.name}` | `{pc.source}` | {pc.config.model.describe()} | {pc.share:.0%} | "
                         f"{pc.projection['projected_total_h']} h |" for pc in packed)
        job = f"""- {len(packed)} checkpoints, one after the other, each predicting (TTT and inference) within its share of the
  time left and writing candidates; then `arc-trm ensemble` combines the candidate files that exist.
  A checkpoint that fails or overruns is left out with its reason logged; the fallback stays until
  a valid ensemble replaces it. Time one checkpoint does not use goes to the ones after it.
- budget {cfg.predict.time_budget_s / 3600:.2f} h from notebook start, shared by
  {"the explicit --split" if opts.split else "planned FLOPs"}:

| | checkpoint | model | share | FLOP projection on 4x L4 |
| --- | --- | --- | --- | --- |
{rows}"""
        logs = ("`/kaggle/working/arc_trm/predict-ckpt_K.log` holds each checkpoint's predict output, "
                "`ensemble.log` the ensemble's; the log's `ensembled N of M checkpoints` line says which were used")
        source = ", ".join(f"`{pc.source}`" for pc in packed)
    return f"""{README_HEAD} {opts.competition}

Generated by `arc-trm package` (arc-trm {arc_trm.__version__}) from {source}.

## Upload

```bash
kaggle datasets create -p {opts.out}/dataset            # first time
kaggle datasets version -p {opts.out}/dataset -m "new checkpoint"   # later
kaggle kernels push -p {opts.out}/notebook
```

Wait for the dataset to finish processing (`kaggle datasets status {ds_meta['id']}`) before pushing
the notebook. Then submit the notebook `{k_meta['id']}` to the competition from its page.

## The job

- internet off, accelerator `{k_meta['machine_shape']}`; one predict process per GPU;
- a fallback `submission.json` (each test input as its own answer) is written first;
{job}

## After the run

- the log prints one line per phase (`fallback`, `install`, `predict`) with its time, and
  `submission from predict written` (or `from the ensemble`) when the model's answers replaced the fallback;
- {logs};
- a rehearsal with a shorter budget: set `ARC_TRM_TIME_BUDGET_S` in the notebook's environment;
  `arc-trm package --placeholder-budget HOURS` gives the unscored public run (placeholder tasks)
  a shorter budget than the scored rerun.
"""
