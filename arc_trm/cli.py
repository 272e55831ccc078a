"""``arc-trm``: one verb per stage. Thin: parse arguments, call one stage function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arc_trm.errors import ArcTrmError


def _cmd_ingest(args: argparse.Namespace) -> int:
    from arc_trm.data.ingest import ingest

    ds = ingest(args.tasks or [], args.test_tasks or [], Path(args.out), args.augmentations, args.seed,
                args.synthetic_tasks, args.synthetic_test_tasks, canvas=args.canvas)
    m = ds.manifest
    print(f"wrote {args.out}: {m['num_tasks']} tasks ({m['num_test_tasks']} test), "
          f"{m['num_demo_examples']} training pairs, {m['num_test_examples']} test inputs, "
          f"{m['num_puzzle_ids']} puzzle IDs")
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
    ing.add_argument("--canvas", type=int, default=30, help="canvas side (30 = the paper; smaller for CPU demos)")
    ing.add_argument("--out", required=True, metavar="DIR")
    ing.set_defaults(func=_cmd_ingest)
    return p


def main(argv: list[str] | None = None) -> int:
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
