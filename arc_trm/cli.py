"""``arc-trm``: one verb per stage. Thin: parse arguments, call one stage function, print a line.

Every user mistake (a bad path, task, preset, override or checkpoint) ends as one line naming
the thing and the problem, with exit code 2; a run stopped by a signal exits 130 (SIGINT) or
143 (SIGTERM) after saving.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from arc_trm.errors import ArcTrmError, Interrupted
from arc_trm.paths import check_io, place


def _err(verb: str, msg: str) -> None:
    print(f"arc-trm {verb}: {msg}", file=sys.stderr)


TABLE_WIDTH = 512      # the paper models' hidden size, which is the embedding rows' width


def _cmd_ingest(args: argparse.Namespace) -> int:
    from arc_trm.data.ingest import ingest
    from arc_trm.model.memory import size_text, table_bytes

    ds = ingest(args.tasks or [], args.test_tasks or [], Path(args.out), args.augmentations, args.seed,
                args.synthetic_tasks, args.synthetic_test_tasks, canvas=args.canvas,
                synthetic_families=args.synthetic_family, pool_pairs=args.pool_pairs, pool_puzzles=args.pool_puzzles,
                exclude_overlap=args.exclude_overlap or [], on_warning=lambda w: _err("ingest", f"warning: {w}"))
    m, src = ds.manifest, ds.manifest["sources"]
    pooled = (f"; {src['pool_puzzles_made']} puzzles of {src['pool_pairs']} pairs from {src['pools']} example pools"
              if src.get("pools") else "")
    print(f"wrote {args.out}: {m['num_tasks']} tasks ({m['num_test_tasks']} test{pooled}), "
          f"{m['num_demo_examples']} training pairs, {m['num_test_examples']} test inputs")
    rows = m["num_puzzle_ids"]
    print(f"{m['num_plans']} augmented copies (up to {m['augmentations']} + the original per task); puzzle-embedding "
          f"table: {rows} rows, {size_text(table_bytes(rows, TABLE_WIDTH))} at the paper models' {TABLE_WIDTH} wide in "
          "float32, on every training device")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from arc_trm.config import load_config, preset_kind, set_fields
    from arc_trm.train.run import train

    kind = preset_kind(args.preset, "run")
    if kind != "run":
        raise ArcTrmError(f"is a {kind} preset; train takes a run preset ({', '.join(_presets('run'))})",
                          source=args.preset)
    cfg = load_config(args.preset, args.set or [], model=args.model)
    if args.exclude_overlap:
        set_fields(cfg, {"data.exclude_overlap": cfg.data.exclude_overlap + args.exclude_overlap})
    if args.select_on is not None:
        set_fields(cfg, select_on(args.select_on))
    if args.log_with:
        import importlib.util
        module = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}[args.log_with]
        if not any(importlib.util.find_spec(m) for m in module):
            extra = "pip install 'arc-trm[tensorboard]'" if args.log_with == "tensorboard" else "pip install wandb"
            raise ArcTrmError(f"--log-with {args.log_with} needs the {module[0]} package ({extra})")
    out = Path(args.out or f"runs/{cfg.name}")
    summary = train(cfg, out, Path(args.dataset) if args.dataset else None, resume=not args.fresh,
                    log_with=args.log_with, init_from=Path(args.init_from) if args.init_from else None)
    if summary["signal"]:
        return 128 + summary["signal"]
    print(f"arc-trm train: {summary['steps']} steps; checkpoint {summary['checkpoint']}; curves {summary['plot']}")
    print(f"arc-trm train: {summary['best_line'] or 'no evaluation'}")
    if summary.get("limit_note"):
        print(f"arc-trm train: {summary['limit_note']}")
    return 0


def select_on(spec: str) -> dict:
    """``--select-on``: a share of the test tasks (0 to 1; "all" = 1), a file of task ids (a JSON list, the
    keys of a JSON object such as a challenges file, or one id per line), or ids separated by commas."""
    try:
        share = 1.0 if spec == "all" else float(spec)
    except ValueError:
        share = None
    if share is not None:
        if not 0 <= share <= 1:
            raise ArcTrmError("a share must be between 0 and 1 (or \"all\")", source="--select-on")
        return {"train.select_share": share, "train.select_tasks": []}
    path = Path(spec)
    if path.is_file():
        text = path.read_text()
        try:
            data = json.loads(text)
            ids = list(data) if isinstance(data, (list, dict)) else None
        except ValueError:
            ids = [line.strip() for line in text.splitlines() if line.strip()]
        if not ids:
            raise ArcTrmError("names no task (a JSON list or object of task ids, or one id per line)", source=spec)
    else:
        ids = [t.strip() for t in spec.split(",") if t.strip()]
    return {"train.select_tasks": [str(t) for t in ids]}


def _cmd_predict(args: argparse.Namespace) -> int:
    from arc_trm.clock import started_at
    from arc_trm.solve.predict import predict

    fields = {k: v for k, v in (("predict.strategy", args.strategy), ("ttt.mode", args.ttt)) if v}
    res = predict(Path(args.checkpoint), args.tasks, Path(args.out), args.set or [], args.time_budget,
                  solutions=Path(args.solutions) if args.solutions else None,
                  on_error=lambda e: _err("predict", f"skipping: {e}"), fields=fields,
                  candidates=Path(args.candidates) if args.candidates else None,
                  started_at=started_at())
    t = res.timings
    ttt = t.get("ttt") or {}
    steps = (", ".join(f"{k} {v}" for k, v in ttt.get("steps", {}).items()) or "none") + (
        f" over {ttt['runs']} tasks" if ttt.get("runs") else "")
    for w in res.warnings:
        _err("predict", f"warning: {w}")
    partial = (f"; {res.partial_inputs} test inputs voted on fewer views than planned (the time budget)"
               if res.partial_inputs else "")
    why = ", ".join(f"{n} {reason}" for reason, n in res.fallback_reasons.items())
    fallback = (f"{len(res.fallback_tasks)} answered by fallback" +
                (f" ({res.fallback_inputs} test inputs: {why})" if res.fallback_inputs else ""))
    print(f"wrote {res.path} ({len(res.submission)} tasks, {fallback}{partial}) in "
          f"{t.get('total_s', 0):.1f}s: TTT steps {steps} ({t.get('ttt_s', 0):.1f}s), "
          f"{res.metrics.get('views', 0)} views ({t.get('inference_s', 0):.1f}s)"
          + (f"; compiling {t['compile_s']:.1f}s of that" if t.get("compile_s") else ""))
    if res.split is not None:
        for w in res.split.whole.warnings():
            _err("predict", f"warning: {w}")
        for line in res.split.lines(args.detail, {t: "fallback" for t in res.fallback_tasks}):
            print(line)
        if "single_view" in res.metrics and not res.chosen_on:
            print(f"one view's answer (no voting) {res.metrics['single_view']:.4f}")
    return 0


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from arc_trm.data.tasks import answers_of, load_spec, read_solutions, spec_places
    from arc_trm.infer.candidates import read_candidates
    from arc_trm.infer.ensemble import ensemble_submission, own_attempts
    from arc_trm.infer.score import split_score
    from arc_trm.infer.selection import sidecar_path, write_sidecar
    from arc_trm.infer.submission import write
    from arc_trm.solve.predict import check_output_path

    out = Path(args.out)
    check_output_path(out)
    inputs = [place("CANDIDATES", f) for f in args.files] + (spec_places("--tasks", args.tasks) if args.tasks else [])
    check_io(inputs + ([place("--solutions", args.solutions)] if args.solutions else []),
             [place("--out", out), place("--out's chosen-on file", sidecar_path(out))])
    read = [read_candidates(Path(f)) for f in args.files]
    files = [(f, tasks) for f, (_, tasks) in zip(args.files, read)]
    # the tasks each file's checkpoint was chosen on: the ensemble's figure on them is marked too
    chosen_on = [set(map(str, source.get("chosen_on") or [])) for source, _ in read]
    report = load_spec(args.tasks, solutions=False) if args.tasks else None
    res = ensemble_submission(files, args.weights or [1.0] * len(files), report, args.tasks or "")
    write(out, res.submission, res.expected)
    write_sidecar(out, sorted(set().union(*chosen_on) & set(res.submission)), "; ".join(args.files))
    for w in res.warnings:
        _err("ensemble", f"warning: {w}")
    print(f"wrote {out} ({len(res.submission)} tasks from {len(files)} candidate files"
          + (f"; {res.fallback_tasks} answered by fallback" if res.fallback_tasks else "") + ")")
    answers = (read_solutions(Path(args.solutions)) if args.solutions else
               answers_of(args.tasks, report.tasks) if report is not None else None)
    if answers:
        for (name, tasks), chosen in zip(files, chosen_on):
            print("\n".join(split_score(own_attempts(tasks), answers, chosen=chosen).short(name)))
        print("\n".join(split_score(res.submission, answers, chosen=set().union(*chosen_on)).short("ensemble")))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from arc_trm.data.tasks import answers_of, inputs_of, load_spec, read_solutions
    from arc_trm.infer.score import split_score
    from arc_trm.infer.selection import read_sidecar
    from arc_trm.infer.submission import read

    sub = read(Path(args.submission))
    spec = args.solutions
    tasks = None
    if Path(spec).is_file() and "solutions" in Path(spec).name:
        sols = read_solutions(Path(spec))
        beside = Path(spec).with_name(Path(spec).name.replace("solutions", "challenges"))
        if beside.is_file():          # the test inputs, to count the entries that are only the input
            tasks = load_spec(str(beside), solutions=False).tasks
    else:
        tasks = load_spec(spec, solutions=False).tasks
        sols = answers_of(spec, tasks)
        if not sols:
            raise ArcTrmError("holds no answers to score against (pass a *_solutions.json, or tasks with "
                              "their test outputs)", source=spec)
    res = split_score(sub, sols, inputs_of(tasks) if tasks is not None else None, read_sidecar(Path(args.submission)))
    for w in res.whole.warnings():
        _err("score", f"warning: {w}")
    for line in res.lines(args.detail):
        print(line)
    return 0


def _cmd_runs_page(args: argparse.Namespace) -> int:
    from arc_trm.atomic import write_bytes
    from arc_trm.solve.predict import check_output_path
    from arc_trm.train.compare import read_run, runs_page

    out = Path(args.out)
    check_output_path(out)
    check_io([place("--runs", Path(r) / name) for r in args.runs for name in ("metrics.jsonl", "config.json")],
             [place("--out", out)])
    runs = [read_run(Path(r)) for r in args.runs]
    write_bytes(out, runs_page(runs).encode())
    for r in runs:
        b = r.best
        score = (f"pass@2 {b['pass@2']:.4f} over {b['tasks']} scored tasks, 95 % interval {b['pass@2_lo']:.2f}-"
                 f"{b['pass@2_hi']:.2f}" if b.get("tasks") else "no scored figure")
        print(f"{Path(r.folder).name}: {r.core}, {r.parameters / 1e6:.3f} M parameters, {r.steps} steps, "
              f"{r.examples} examples, {r.device} x{r.processes}, {r.device_hours:.3f} device-hours; best/ {score}")
    print(f"wrote {out} ({len(runs)} runs)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    if args.runs:
        if args.submissions or args.tasks:
            raise ArcTrmError("--runs makes the run-comparison page; give either submissions with --tasks, or --runs")
        return _cmd_runs_page(args)
    if not args.submissions or not args.tasks:
        raise ArcTrmError("give submission files and --tasks (or --runs RUN... for the run-comparison page)")
    from arc_trm.data.tasks import answers_of, load_spec, read_solutions, spec_places
    from arc_trm.infer.candidates import read_candidates
    from arc_trm.infer.report import Entry, RunSection, build_report, comparisons, write_report
    from arc_trm.infer.selection import ChosenOn, read_sidecar
    from arc_trm.infer.submission import read
    from arc_trm.model import checkpoint
    from arc_trm.solve.predict import check_output_path, overlap_with_training
    from arc_trm.train.metrics import plot_curves, read_log

    out = Path(args.out)
    check_output_path(out)
    named = [place("SUBMISSION", f) for f in args.submissions] + [place("--candidates", c) for c in args.candidates or []]
    named += spec_places("--tasks", args.tasks) + ([place("--solutions", args.solutions)] if args.solutions else [])
    named += [place("--run", Path(args.run) / "metrics.jsonl")] if args.run else []   # what it reads of the run
    named += [place("--checkpoint", c, whole=True) for c in args.checkpoint or []]
    check_io(named, [place("--out", out)])
    if args.candidates and len(args.candidates) != len(args.submissions):
        raise ArcTrmError(f"{len(args.candidates)} candidate files for {len(args.submissions)} submissions; give one "
                          "per submission, in the same order")
    report = load_spec(args.tasks, solutions=False)
    answers = read_solutions(Path(args.solutions)) if args.solutions else answers_of(args.tasks, report.tasks)
    if not answers:
        raise ArcTrmError("holds no answers to report against (pass --solutions, or tasks with their test outputs)",
                          source=args.tasks)
    stems = [Path(f).stem for f in args.submissions]
    names = stems if len(set(stems)) == len(stems) else [str(f) for f in args.submissions]
    entries = [Entry(n, read(Path(f)), read_candidates(Path(c))[1] if args.candidates else None,
                     chosen=read_sidecar(Path(f)))
               for n, f, c in zip(names, args.submissions, args.candidates or [None] * len(names))]
    run = None
    trained = args.checkpoint or ([str(checkpoint.resolve(Path(args.run)))] if args.run else [])
    if len(trained) not in (0, 1, len(entries)):
        raise ArcTrmError(f"{len(trained)} checkpoints for {len(entries)} submissions; give one per submission, "
                          "in the same order, or one behind them all")
    found: dict = {}                   # each checkpoint loaded and compared once, however many submissions it is behind
    for folder, e in zip(trained * len(entries) if len(trained) == 1 else trained, entries):
        if folder not in found:
            ck = checkpoint.load(Path(folder))
            picked = ChosenOn.from_info(ck.info)
            found[folder] = (overlap_with_training(ck, report.tasks, answers), str(ck.folder),
                             set(picked.among(report.tasks)) if picked is not None else set())
        e.overlap, e.trained_on, picked_here = found[folder]
        e.chosen |= picked_here
        if e.overlap is None:
            _err("report", f"warning: {e.trained_on} does not record what it trained on; no overlap marks for {e.name}")
    if args.run:
        run_dir = Path(args.run)
        png = run_dir / "curves.png"
        if (run_dir / "metrics.jsonl").is_file():
            plot_curves(run_dir / "metrics.jsonl", png)
        evals = [r for r in read_log(run_dir / "metrics.jsonl") if r.get("kind") == "eval"]
        run = RunSection(str(run_dir), png.read_bytes() if png.is_file() else None, evals)
    page = build_report(entries, report.tasks, answers, args.tasks, run)
    write_report(out, page)
    for e in entries:
        print("\n".join(e.split.short(e.name, summary=True)))
    for line in comparisons(entries):
        print(line)
    print(f"wrote {out} ({len(report.tasks)} tasks, {len(entries)} submission(s))")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from arc_trm.train.metrics import plot_curves

    run = Path(args.run)
    if not (run / "metrics.jsonl").is_file():
        raise ArcTrmError("no metrics.jsonl: pass a training run folder", source=str(run))
    out = Path(args.out) if args.out else run / "curves.png"
    check_io([place("RUN", run / "metrics.jsonl")], [place("--out", out)])
    path = plot_curves(run / "metrics.jsonl", out, warn=lambda w: _err("plot", f"warning: {w}"))
    print(f"wrote {path}" if path else "nothing to plot yet")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from arc_trm.data.tasks import spec_places
    from arc_trm.infer.show import show

    check_io(spec_places("--tasks", args.tasks) + ([place("--submission", args.submission)] if args.submission else []),
             [place("--out", args.out)])
    path = show(args.tasks, args.task_id, Path(args.out), Path(args.submission) if args.submission else None)
    print(f"wrote {path}")
    return 0


def _cmd_package(args: argparse.Namespace) -> int:
    from arc_trm.kaggle.package import PackageOptions, package

    checkpoints = [Path(c) for c in args.checkpoint or ["runs/smoke"]]
    opts = PackageOptions(checkpoints, Path(args.out), args.competition, args.owner, args.preset,
                          args.time_budget, args.placeholder_budget, machine_shape=args.machine_shape,
                          wheelhouse=[Path(w) for w in args.wheelhouse or []], offline=args.offline,
                          split=args.split)
    if args.dataset_slug:
        opts.dataset_slug = args.dataset_slug
    pkg = package(opts)
    budget_h = pkg.config.predict.time_budget_s / 3600
    several = len(pkg.checkpoints) > 1
    what = f"{len(pkg.checkpoints)} checkpoints" if several else "checkpoint"
    print(f"wrote {pkg.out}: dataset {pkg.dataset} ({len(pkg.wheels)} wheels + {what}), notebook {pkg.notebook}")
    for pc in pkg.checkpoints:
        p = pc.projection
        head = f"{pc.name} {pc.source}: " if several else ""
        print(f"{head}model: {pc.config.model.describe()}")
        print(f"{head}plan: TTT {p['ttt_steps']} steps x {p['ttt_global_batch']}, {p['views_per_input']} views/input; "
              f"FLOP projection on 4x L4 {p['projected_total_h']} h"
              + (f", {pc.share:.0%} of the {budget_h:.2f} h budget" if several else f" of a {budget_h:.2f} h budget"))
    for note in pkg.substitutions:
        print(f"wheels: {note}")
    for w in pkg.warnings:
        _err("package", f"warning: {w}")
    print(f"upload: see {pkg.out / 'README.md'}")
    return 0


def _cmd_rehearse(args: argparse.Namespace) -> int:
    from arc_trm.data.tasks import spec_places
    from arc_trm.kaggle.rehearse import rehearse, verdict

    if args.root:
        check_io([place("--package", args.package, whole=True)] + spec_places("--tasks", args.tasks),
                 [place("--root", args.root)])
    res = rehearse(Path(args.package), args.tasks, args.budget, args.processes,
                   Path(args.root) if args.root else None, slow=args.slowdown)
    print(f"rehearsal in {res.root}: notebook exit {res.returncode}; submission from {res.summary.used} "
          f"({len(res.submission)} tasks)")
    ckpts = res.summary.checkpoints
    if len(ckpts) > 1:
        print(f"ensembled {res.summary.ensembled} of {len(ckpts)} checkpoints: "
              + ", ".join(f"{c.checkpoint} {'in' if c.ensembled else 'left out: ' + (c.reason or '?')}"
                          for c in ckpts))
    if res.score is not None:
        for name, sc in res.checkpoint_scores.items():
            print(f"pass@2 {sc.score:.4f}  {name} alone")
        print("\n".join(res.split.short("the submission")))
    failure, warnings = verdict(res)
    for w in warnings:
        _err("rehearse", f"warning: {w}")
    if failure:
        _err("rehearse", failure)
        return 1
    return 0


def _cmd_import_reference(args: argparse.Namespace) -> int:
    from arc_trm.convert.reference import import_reference

    named = [("STEP_FILE", args.step_file), ("--config", args.config), ("--identifiers", args.identifiers)]
    check_io([place(flag, p) for flag, p in named if p], [place("--out", args.out)])
    notes: list[str] = []
    ck = import_reference(Path(args.step_file), Path(args.out), Path(args.config) if args.config else None,
                          Path(args.identifiers) if args.identifiers else None, args.set or [], notes)
    for n in notes:
        print(f"arc-trm import-reference: {n}")
    known = (f"{len(ck.puzzles.task_ids)} known tasks, {ck.puzzles.num_plans} embedding rows" if ck.puzzles.task_ids
             else "no identifiers: every task will be treated as unseen (rows start "
             + ("fresh, as the reference's test-time training starts them)" if ck.cfg.ttt.new_rows == "fresh"
                else "at the trained mean)"))
    print(f"wrote {ck.folder}: {ck.cfg.model.describe()}; {known}")
    return 0


def _competitions() -> dict[str, str]:
    from arc_trm.kaggle.competitions import KNOWN_COMPETITIONS
    return KNOWN_COMPETITIONS


def _presets(kind: str) -> list[str]:
    from arc_trm.config import preset_names
    return preset_names(kind)


class _Defaults(argparse.HelpFormatter):
    """Each option's default after its help, once: not where the help names it already, nor for options
    without one (None, a flag that is off)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    fmt = _Defaults
    p = argparse.ArgumentParser(
        prog="arc-trm", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Tiny Recursive Model pipeline for ARC-AGI: ingest → train → predict → package.",
        epilog="quick start:  arc-trm train   (4 CPU minutes on generated tasks)\n"
               "              arc-trm predict --tasks arc1-eval --out submission.json\n"
               f"presets: run {', '.join(_presets('run'))}; model {', '.join(_presets('model'))}; "
               f"predict {', '.join(_presets('predict'))}\n"
               "`arc-trm VERB --help` shows a verb's options and defaults.")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    ing = sub.add_parser("ingest", help="ARC tasks → dataset directory (grids, plans, puzzle IDs)", formatter_class=fmt)
    ing.add_argument("--tasks", action="append", metavar="SPEC",
                     help="training tasks: bundled name (arc1-train, conceptarc, ...), challenges JSON or task folder")
    ing.add_argument("--test-tasks", action="append", metavar="SPEC",
                     help="tasks whose demos join training and whose test inputs get predicted")
    ing.add_argument("--augmentations", type=int, default=1000,
                     help="augmented copies per task (dihedral x colour permutation), each its own embedding row")
    ing.add_argument("--seed", type=int, default=0, help="seed of the augmentation plans and pool cuts")
    ing.add_argument("--synthetic-tasks", type=int, default=0, help="add N generated training tasks")
    ing.add_argument("--synthetic-test-tasks", type=int, default=0, help="add N generated test tasks")
    ing.add_argument("--synthetic-family", action="append", metavar="NAME",
                     help="generate only this rule family (repeatable; default all)")
    ing.add_argument("--canvas", type=int, default=30, help="canvas side (30 = the paper; smaller for CPU demos)")
    ing.add_argument("--pool-pairs", type=int, default=8, metavar="N",
                     help="example pools (files of input/output pairs, e.g. RE-ARC) become puzzles of N pairs")
    ing.add_argument("--pool-puzzles", type=int, default=0, metavar="N",
                     help="at most N puzzles per pool (0: as many as the pool fills)")
    ing.add_argument("--exclude-overlap", action="append", metavar="SPEC",
                     help="leave out training tasks that hold test pairs, test inputs or demonstrations of these "
                          "tasks, compared by content (e.g. arc1-eval when training on arc2-train)")
    ing.add_argument("--out", required=True, metavar="DIR",
                     help="dataset folder to write: new, empty, or a dataset folder arc-trm wrote")
    ing.set_defaults(func=_cmd_ingest)

    tr = sub.add_parser("train", help="train a TRM (default: the CPU smoke preset on generated tasks)",
                        formatter_class=fmt)
    tr.add_argument("--preset", default="smoke", help=f"run preset ({', '.join(_presets('run'))}) or a TOML file")
    tr.add_argument("--model", metavar="PRESET",
                    help=f"model preset replacing the run preset's ({', '.join(_presets('model'))}), e.g. "
                         "--preset smoke --model urm-tiny")
    tr.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", help="override any config field")
    tr.add_argument("--dataset", metavar="DIR", help="an ingested dataset (default: ingest the preset's data)")
    tr.add_argument("--out", metavar="DIR", help="run folder (default runs/PRESET)")
    tr.add_argument("--init-from", metavar="CHECKPOINT",
                    help="start from a checkpoint's weights and known embedding rows (fresh optimizer)")
    tr.add_argument("--fresh", action="store_true", help="delete the run folder's previous run and start over")
    tr.add_argument("--select-on", metavar="SPEC",
                    help="the test tasks best/ is chosen on (never scored): a share (default: the preset's "
                         "train.select_share, 0.25), 0 for no best/, all, a file of task ids, or ids with commas")
    tr.add_argument("--exclude-overlap", action="append", metavar="SPEC",
                    help="leave out training tasks that hold anything of these tasks (data.exclude_overlap)")
    tr.add_argument("--log-with", choices=["tensorboard", "wandb"], help="also log to this tracker")
    tr.set_defaults(func=_cmd_train)

    pr = sub.add_parser("predict", help="checkpoint + tasks → submission.json (with test-time training)",
                        formatter_class=fmt)
    pr.add_argument("--checkpoint", default="runs/smoke", help="checkpoint, or run folder (its best/)")
    pr.add_argument("--tasks", required=True, help="challenges JSON, task file or folder, or bundled set name")
    pr.add_argument("--out", default="submission.json", help="submission file to write")
    pr.add_argument("--solutions", help="solutions JSON for scoring (default: found beside the challenges)")
    pr.add_argument("--strategy", choices=["vote", "poe", "vote+poe"], help="default: the checkpoint's")
    pr.add_argument("--ttt", choices=["off", "embeddings", "embeddings_then_full", "full"],
                    help="test-time training mode (default: the checkpoint's)")
    pr.add_argument("--time-budget", type=float, metavar="SECONDS",
                    help="stop TTT and inference in time (counted from the command's start)")
    pr.add_argument("--detail", action="store_true", help="print every task's score when answers exist")
    pr.add_argument("--candidates", metavar="FILE",
                    help="also write the ranked candidates behind the attempts (for `arc-trm ensemble`)")
    pr.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", help="override ttt.* / predict.*")
    pr.set_defaults(func=_cmd_predict)

    sc = sub.add_parser("score", help="pass@2 of a submission as ARC Prize scores it", formatter_class=fmt)
    sc.add_argument("submission")
    sc.add_argument("--solutions", required=True,
                    help="*_solutions.json, or tasks with answers (bundled name, challenges with solutions beside)")
    sc.add_argument("--detail", action="store_true", help="print every task's score")
    sc.set_defaults(func=_cmd_score)

    en = sub.add_parser("ensemble", formatter_class=fmt,
                        help="candidate files (predict --candidates, other solvers) → one submission")
    en.add_argument("files", nargs="+", metavar="CANDIDATES", help="arc-trm-candidates/1 files")
    en.add_argument("--out", required=True, help="submission file to write")
    en.add_argument("--weights", type=float, nargs="+", metavar="W", help="one weight per file (default: equal)")
    en.add_argument("--tasks", metavar="SPEC", help="answer every task of this spec (fallback where no file has it)")
    en.add_argument("--solutions", metavar="JSON", help="answers to score each file and the ensemble against")
    en.set_defaults(func=_cmd_ensemble)

    rp = sub.add_parser("report", formatter_class=fmt,
                        help="one self-contained HTML page of an evaluation: scores, breakdowns, every task's attempts")
    rp.add_argument("submissions", nargs="*", metavar="SUBMISSION", help="submission files to report side by side")
    rp.add_argument("--runs", nargs="+", metavar="RUN", help="instead: training run folders side by side (core, "
                    "parameters, examples, device-hours, selection split, best/'s pass@2 with its interval, curves)")
    rp.add_argument("--tasks", metavar="SPEC", help="the tasks they answer (with their answers, or "
                    "--solutions)")
    rp.add_argument("--solutions", metavar="JSON", help="answers (default: the tasks' own, or the solutions beside them)")
    rp.add_argument("--candidates", action="append", metavar="FILE",
                    help="each submission's candidate file (predict --candidates), in order: vote shares and oracle top-k")
    rp.add_argument("--checkpoint", metavar="DIR", action="append",
                    help="the checkpoint behind each submission, in order (or one behind them all; default: "
                         "--run's): marks the tasks whose answers it trained on and scores the others apart")
    rp.add_argument("--run", metavar="RUN", help="a training run folder: its curves and last evaluation, and the "
                    "overlap marks of its checkpoint")
    rp.add_argument("--out", default="report.html", help="the HTML file to write")
    rp.set_defaults(func=_cmd_report)

    pl = sub.add_parser("plot", help="training curves of a run (also while it trains)", formatter_class=fmt)
    pl.add_argument("run", help="run folder with metrics.jsonl")
    pl.add_argument("--out", help="PNG path (default RUN/curves.png)")
    pl.set_defaults(func=_cmd_plot)

    sh = sub.add_parser("show", help="PNG of a task with its attempts and the truth", formatter_class=fmt)
    sh.add_argument("task_id")
    sh.add_argument("--tasks", required=True, help="where the task is: bundled name, challenges JSON, file or folder")
    sh.add_argument("--submission", help="draw this submission's two attempts")
    sh.add_argument("--out", default="task.png")
    sh.set_defaults(func=_cmd_show)

    pk = sub.add_parser("package", help="checkpoint → submission/ (Kaggle notebook + offline dataset)",
                        formatter_class=fmt)
    pk.add_argument("--checkpoint", action="append", metavar="DIR",
                    help="checkpoint, or run folder (its best/); repeat it to ensemble several on Kaggle "
                         "(default: runs/smoke)")
    pk.add_argument("--split", type=float, nargs="+", metavar="SHARE",
                    help="the checkpoints' shares of the budget, e.g. 2 1 (default: by planned FLOPs)")
    pk.add_argument("--out", default="submission", metavar="DIR",
                    help="where dataset/, notebook/ and README.md are written")
    pk.add_argument("--competition", required=True, metavar="SLUG",
                    help="the Kaggle competition to attach; known ARC-AGI-2 tracks: "
                         + ", ".join(f"{slug} ({what})" for slug, what in _competitions().items()))
    pk.add_argument("--owner", required=True, metavar="KAGGLE_USER", help="your Kaggle user name (owns the dataset "
                    "and the notebook)")
    pk.add_argument("--preset", default="kaggle-l4x4", help="predict preset whose [ttt] and [predict] go on the checkpoint")
    pk.add_argument("--time-budget", type=float, metavar="HOURS", help="job budget (default: the preset's)")
    pk.add_argument("--placeholder-budget", type=float, metavar="HOURS",
                    help="budget of the unscored public run over the placeholder tasks (saves GPU quota)")
    pk.add_argument("--dataset-slug", help="the Kaggle dataset's name (default: arc-trm-payload)")
    pk.add_argument("--machine-shape", default="NvidiaL4X4", help="the notebook's Kaggle accelerator")
    pk.add_argument("--wheelhouse", action="append", metavar="DIR", help="folder of wheels to take first")
    pk.add_argument("--offline", action="store_true", help="take dependency wheels only from --wheelhouse")
    pk.set_defaults(func=_cmd_package)

    rh = sub.add_parser("rehearse", formatter_class=fmt,
                        help="run a package's Kaggle notebook here against a fake /kaggle (before using GPU quota)")
    rh.add_argument("--package", default="submission", help="what `arc-trm package` wrote")
    rh.add_argument("--tasks", required=True, help="tasks to play the hidden test set: challenges JSON, folder or bundled name")
    rh.add_argument("--budget", type=float, metavar="SECONDS", help="the job's budget (default: the package's)")
    rh.add_argument("--processes", type=int, default=1, help="predict processes (on a CPU machine: gloo processes)")
    rh.add_argument("--root", metavar="DIR", help="keep the fake /kaggle, the venv and the logs here (default: a temp dir)")
    rh.add_argument("--slowdown", metavar="FACTOR[@SECONDS[-UNTIL]]",
                    help="a machine slower than planned: every model step of predict FACTOR times slower, from "
                         "SECONDS after it starts, until UNTIL (e.g. 3, 2@30, or 5@0-20: a neighbour that stops)")
    rh.set_defaults(func=_cmd_rehearse)

    ir = sub.add_parser("import-reference", formatter_class=fmt,
                        help="a TRM or URM reference checkpoint (step_N, step_N.pt) → an arc-trm checkpoint folder")
    ir.add_argument("step_file", help="the reference's torch.save of its model state dict, or a training "
                    "checkpoint holding one (URM's step_N.pt)")
    ir.add_argument("--config", metavar="YAML", help="the run's all_config.yaml or config.yaml (default: the one "
                    "beside the checkpoint, else its tensor shapes and the published ARC settings)")
    ir.add_argument("--identifiers", metavar="JSON",
                    help="the training dataset's identifiers.json: keeps every known task's rows")
    ir.add_argument("--out", required=True, metavar="DIR", help="new checkpoint folder")
    ir.add_argument("--set", action="append", metavar="model.FIELD=VALUE", help="what shapes cannot tell")
    ir.set_defaults(func=_cmd_import_reference)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv:             # list the verbs; never start a run unasked
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ArcTrmError as e:
        _err(args.verb, f"error: {e}")
        return 2
    except OSError as e:
        # an OS error on a path the user named (full disk, permissions, a missing mount)
        from arc_trm.atomic import failure_reason
        where = f" ({e.filename})" if e.filename else ""
        _err(args.verb, f"error{where}: {failure_reason(e, Path(e.filename or '.'))}")
        return 2
    except Interrupted as e:
        _err(args.verb, str(e))
        return 128 + e.signum
    except KeyboardInterrupt:
        _err(args.verb, "interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
