"""``arc-trm``: one verb per stage. Thin: parse arguments, call one stage function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arc_trm.errors import ArcTrmError


def _cmd_ingest(args: argparse.Namespace) -> int:
    from arc_trm.data.ingest import ingest

    ds = ingest(args.tasks or [], args.test_tasks or [], Path(args.out), args.augmentations, args.seed,
                args.synthetic_tasks, args.synthetic_test_tasks, canvas=args.canvas,
                synthetic_families=args.synthetic_family)
    m = ds.manifest
    print(f"wrote {args.out}: {m['num_tasks']} tasks ({m['num_test_tasks']} test), "
          f"{m['num_demo_examples']} training pairs, {m['num_test_examples']} test inputs, "
          f"{m['num_puzzle_ids']} puzzle IDs")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from arc_trm.config import load_config
    from arc_trm.train.run import train

    cfg = load_config(args.preset, args.set or [])
    out = Path(args.out or f"runs/{cfg.name}")
    summary = train(cfg, out, Path(args.dataset) if args.dataset else None, resume=not args.fresh,
                    log_with=args.log_with)
    if summary.get("final_eval") is not None and not summary["interrupted"]:
        print(f"arc-trm train: {summary['steps']} steps; best pass@2 {summary['best_pass@2']:.3f}; "
              f"checkpoint {summary['checkpoint']}; curves {summary['plot']}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from arc_trm.solve.predict import predict

    overrides = list(args.set or [])
    if args.strategy:
        overrides.append(f'predict.strategy="{args.strategy}"')
    if args.ttt:
        overrides.append(f'ttt.mode="{args.ttt}"')
    res = predict(Path(args.checkpoint), args.tasks, Path(args.out), overrides, args.time_budget,
                  solutions=Path(args.solutions) if args.solutions else None,
                  on_error=lambda e: print(f"arc-trm predict: skipping: {e}", file=sys.stderr))
    t = res.timings
    steps = ", ".join(f"{k} {v}" for k, v in (t.get("ttt_steps") or {}).items()) or "none"
    print(f"wrote {res.path} ({len(res.submission)} tasks) in {t.get('total_s', 0):.1f}s: TTT steps {steps} "
          f"({t.get('ttt_s', 0):.1f}s), {res.metrics.get('views', 0)} views ({t.get('inference_s', 0):.1f}s)")
    if res.score is not None:
        print(f"pass@2 {res.score:.4f}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    import orjson

    from arc_trm.solve.score import score_submission
    from arc_trm.solve.submission import read, validate

    sub = read(Path(args.submission))
    problems = validate(sub)
    for p in problems[:20]:
        print(f"invalid: {p}", file=sys.stderr)
    sols = orjson.loads(Path(args.solutions).read_bytes())
    res = score_submission(sub, sols)
    if args.detail:
        for task_id, s in sorted(res.per_task.items()):
            print(f"{task_id}\t{s:.3f}")
    print(f"pass@2 {res.score:.4f} over {res.tasks} tasks")
    return 1 if problems else 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from arc_trm.train.metrics import plot_curves

    run = Path(args.run)
    if not (run / "metrics.jsonl").is_file():
        raise ArcTrmError("no metrics.jsonl: pass a training run folder", source=str(run))
    path = plot_curves(run / "metrics.jsonl", Path(args.out) if args.out else run / "curves.png")
    print(f"wrote {path}" if path else "nothing to plot yet")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from arc_trm.solve.show import show

    path = show(args.tasks, args.task_id, Path(args.out), Path(args.submission) if args.submission else None)
    print(f"wrote {path}")
    return 0


def _cmd_package(args: argparse.Namespace) -> int:
    from arc_trm.kaggle.package import PackageOptions, package

    opts = PackageOptions(Path(args.checkpoint), Path(args.out), args.competition, args.owner, args.preset,
                          args.time_budget, args.placeholder_budget, machine_shape=args.machine_shape,
                          python_version=args.python_version, wheelhouse=[Path(w) for w in args.wheelhouse or []],
                          offline=args.offline)
    if args.dataset_slug:
        opts.dataset_slug = args.dataset_slug
    pkg = package(opts)
    p = pkg.projection
    print(f"wrote {pkg.out}: dataset {pkg.dataset} ({len(pkg.wheels)} wheels + checkpoint), notebook {pkg.notebook}")
    print(f"plan: TTT {p['ttt_steps']} steps x {p['ttt_global_batch']}, {p['views_per_input']} views/input; "
          f"FLOP projection on 4x L4 {p['projected_total_h']} h of a {pkg.config.predict.time_budget_s / 3600:.2f} h budget")
    for w in pkg.warnings:
        print(f"arc-trm package: warning: {w}", file=sys.stderr)
    print(f"upload: see {pkg.out / 'README.md'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="arc-trm", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)

    ing = sub.add_parser("ingest", help="ARC tasks → dataset directory (grids, plans, puzzle IDs)")
    ing.add_argument("--tasks", action="append", metavar="SPEC",
                     help="training tasks: bundled name (arc1-train, arc2-train, ...), challenges JSON or task folder")
    ing.add_argument("--test-tasks", action="append", metavar="SPEC",
                     help="tasks whose demos join training and whose test inputs get predicted")
    ing.add_argument("--augmentations", type=int, default=1000)
    ing.add_argument("--seed", type=int, default=0)
    ing.add_argument("--synthetic-tasks", type=int, default=0, help="add N generated training tasks")
    ing.add_argument("--synthetic-test-tasks", type=int, default=0, help="add N generated test tasks")
    ing.add_argument("--synthetic-family", action="append", metavar="NAME",
                     help="generate only this rule family (repeatable; default all)")
    ing.add_argument("--canvas", type=int, default=30, help="canvas side (30 = the paper; smaller for CPU demos)")
    ing.add_argument("--out", required=True, metavar="DIR")
    ing.set_defaults(func=_cmd_ingest)

    tr = sub.add_parser("train", help="train a TRM (default: the CPU smoke preset on generated tasks)")
    tr.add_argument("--preset", default="smoke", help="run preset name or TOML file (smoke, arc1-paper, arc2-paper)")
    tr.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", help="override any config field")
    tr.add_argument("--dataset", metavar="DIR", help="an ingested dataset (default: ingest the preset's data)")
    tr.add_argument("--out", metavar="DIR", help="run folder (default runs/PRESET)")
    tr.add_argument("--fresh", action="store_true", help="ignore saved state in the run folder")
    tr.add_argument("--log-with", choices=["tensorboard", "wandb"], help="also log to this tracker")
    tr.set_defaults(func=_cmd_train)

    pr = sub.add_parser("predict", help="checkpoint + tasks → submission.json (with test-time training)")
    pr.add_argument("--checkpoint", default="runs/smoke", help="checkpoint or run folder (its best/)")
    pr.add_argument("--tasks", required=True, help="challenges JSON, task folder or bundled set name")
    pr.add_argument("--out", default="submission.json")
    pr.add_argument("--solutions", help="solutions JSON for scoring (found beside the challenges by default)")
    pr.add_argument("--strategy", choices=["vote", "poe", "vote+poe"])
    pr.add_argument("--ttt", choices=["off", "embeddings", "embeddings_then_full", "full"])
    pr.add_argument("--time-budget", type=float, metavar="SECONDS")
    pr.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE")
    pr.set_defaults(func=_cmd_predict)

    sc = sub.add_parser("score", help="pass@2 of a submission as ARC Prize scores it")
    sc.add_argument("submission")
    sc.add_argument("--solutions", required=True)
    sc.add_argument("--detail", action="store_true", help="print every task's score")
    sc.set_defaults(func=_cmd_score)

    pl = sub.add_parser("plot", help="training curves of a run (also while it trains)")
    pl.add_argument("run", help="run folder with metrics.jsonl")
    pl.add_argument("--out", help="PNG path (default RUN/curves.png)")
    pl.set_defaults(func=_cmd_plot)

    sh = sub.add_parser("show", help="PNG of a task with its attempts and the truth")
    sh.add_argument("task_id")
    sh.add_argument("--tasks", required=True)
    sh.add_argument("--submission")
    sh.add_argument("--out", default="task.png")
    sh.set_defaults(func=_cmd_show)

    pk = sub.add_parser("package", help="checkpoint → submission/ (Kaggle notebook + offline dataset)")
    pk.add_argument("--checkpoint", default="runs/smoke", help="checkpoint or run folder (its best/)")
    pk.add_argument("--out", default="submission")
    pk.add_argument("--competition", required=True, metavar="SLUG", help="e.g. arc-prize-2025")
    pk.add_argument("--owner", required=True, metavar="KAGGLE_USER")
    pk.add_argument("--preset", default="kaggle-l4x4", help="its [ttt] and [predict] tables go on the checkpoint")
    pk.add_argument("--time-budget", type=float, metavar="HOURS", help="job budget (default: the preset's)")
    pk.add_argument("--placeholder-budget", type=float, metavar="HOURS",
                    help="budget of the unscored public run over the placeholder tasks (saves GPU quota)")
    pk.add_argument("--dataset-slug", help="default arc-trm-payload")
    pk.add_argument("--machine-shape", default="NvidiaL4X4")
    pk.add_argument("--python-version", default="3.11", help="Python of the Kaggle image, for binary wheels")
    pk.add_argument("--wheelhouse", action="append", metavar="DIR", help="folder of wheels to take first")
    pk.add_argument("--offline", action="store_true", help="take dependency wheels only from --wheelhouse")
    pk.set_defaults(func=_cmd_package)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:  # the README's main job: train the embedded default
        argv = ["train"]
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ArcTrmError as e:
        print(f"arc-trm {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"arc-trm {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
