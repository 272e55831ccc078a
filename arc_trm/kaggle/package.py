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
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from slugify import slugify

import arc_trm
from arc_trm.atomic import replacing_folder, write_bytes
from arc_trm.config import RunConfig, apply_preset_tables
from arc_trm.errors import ArcTrmError
from arc_trm.kaggle import image, metadata, wheels
from arc_trm.kaggle.job import PAYLOAD_MARKER
from arc_trm.kaggle.notebook import build_notebook, write_notebook
from arc_trm.kaggle.budget import L4X4, project
from arc_trm.kaggle.competitions import competition_warnings
from arc_trm.model import checkpoint as ckpt_io


@dataclass
class PackageOptions:
    checkpoint: Path
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


@dataclass
class Package:
    out: Path
    dataset: Path
    notebook: Path
    wheels: list[str]
    config: RunConfig
    projection: dict
    warnings: list[str] = field(default_factory=list)


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


def package(opts: PackageOptions) -> Package:
    src = ckpt_io.resolve(opts.checkpoint)
    ck = ckpt_io.load(src)                       # refuses a missing or corrupt checkpoint up front
    cfg = resolved_config(ck.cfg, opts.preset, opts.time_budget_h)
    canvas = ck.canvas
    plan = project(cfg.model, cfg.ttt, cfg.predict, L4X4, canvas=canvas).as_dict()
    warnings = competition_warnings(opts.competition)
    if canvas < 30:
        warnings.append(f"the checkpoint's canvas is {canvas}x{canvas}: hidden tasks with larger grids get "
                        "fallback answers (train with --canvas 30 for a real entry)")
    if plan["projected_total_h"] * 3600 > cfg.predict.time_budget_s:
        warnings.append(f"the FLOP projection ({plan['projected_total_h']} h on 4x L4) exceeds the budget: "
                        "TTT and inference will be cut by the deadline")

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
    with replacing_folder(dataset) as ds_tmp, replacing_folder(notebook_dir) as nb_tmp:
        for f in src.iterdir():
            if f.is_file() and f.name != "config.json":
                shutil.copy2(f, ds_tmp / f.name)
        (ds_tmp / "config.json").write_bytes(orjson.dumps(cfg.to_dict(), option=orjson.OPT_INDENT_2))
        whl = [wheels.project_wheel(ds_tmp, opts.wheelhouse)]
        whl += wheels.dependency_wheels(ds_tmp, wheelhouse=opts.wheelhouse, offline=opts.offline)
        names = sorted({w.name for w in whl})
        packages = ["arc-trm", *image.SHIPPED]
        payload = {"version": arc_trm.__version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "time_budget_s": cfg.predict.time_budget_s, "competition": opts.competition,
                   "placeholder_time_budget_s": opts.placeholder_budget_h * 3600 if opts.placeholder_budget_h else None,
                   "checkpoint_steps": ck.info.get("step"), "wheels": names, "packages": packages,
                   "pythons": list(wheels.PYTHONS), "image_tested": image.tested_versions(),
                   "projection_4xL4_from_flops": plan}
        (ds_tmp / PAYLOAD_MARKER).write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
        (ds_tmp / "dataset-metadata.json").write_bytes(orjson.dumps(ds_meta, option=orjson.OPT_INDENT_2))

        summary = (f"Payload: arc-trm {arc_trm.__version__}, time budget {cfg.predict.time_budget_s / 3600:.2f} h, "
                   f"TTT `{cfg.ttt.mode}` ({plan['ttt_steps']} steps x {cfg.ttt.global_batch_size}), "
                   f"{plan['views_per_input']} views per test input, strategy `{cfg.predict.strategy}`.")
        write_notebook(build_notebook(opts.kernel_title, summary), nb_tmp / nb_file)
        (nb_tmp / "kernel-metadata.json").write_bytes(orjson.dumps(k_meta, option=orjson.OPT_INDENT_2))
    write_bytes(out / "README.md", _readme(opts, ds_meta, k_meta, cfg, plan).encode())
    return Package(out, dataset, notebook_dir / nb_file, names, cfg, plan, warnings)


def _readme(opts: PackageOptions, ds_meta: dict, k_meta: dict, cfg: RunConfig, plan: dict) -> str:
    return f"""# Kaggle upload: {opts.competition}

Generated by `arc-trm package` (arc-trm {arc_trm.__version__}) from `{opts.checkpoint}`.

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
- TTT `{cfg.ttt.mode}`: {cfg.ttt.embedding_steps} embedding + {cfg.ttt.full_steps} full steps at global batch
  {cfg.ttt.global_batch_size}, {cfg.ttt.augmentations} augmentations per task;
- {plan['views_per_input']} views per test input, strategy `{cfg.predict.strategy}`;
- budget {cfg.predict.time_budget_s / 3600:.2f} h from notebook start; FLOP projection on 4x L4:
  {plan['projected_total_h']} h (TTT {plan['projected_ttt_h']} h, inference {plan['projected_inference_h']} h).

## After the run

- the log prints one line per phase (`fallback`, `install`, `predict`) with its time, and
  `submission from predict written` when the model's answers replaced the fallback;
- `/kaggle/working/arc_trm/predict.log` holds predict's full output;
- a rehearsal with a shorter budget: set `ARC_TRM_TIME_BUDGET_S` in the notebook's environment;
  `arc-trm package --placeholder-budget HOURS` gives the unscored public run (placeholder tasks)
  a shorter budget than the scored rerun.
"""
