"""The dataset directory: base grids, examples, the augmentation plan and the puzzle-ID table.

Written by ``arc-trm ingest``, read by training and by evaluation. Grids are stored once
(untransformed); augmented copies exist only as plans and are rendered when a batch is drawn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from arc_trm.data.canvas import CANVAS, VOCAB_SIZE
from arc_trm.data.overlap import Prints, grid_print, pair_print
from arc_trm.data.puzzle_ids import PuzzleTable
from arc_trm.data.tasks import Task
from arc_trm.atomic import replacing_folder
from arc_trm.errors import ArcTrmError, TaskError
from arc_trm.jsonfile import read_json

FORMAT_VERSION = 1
DEMO, TEST = 0, 1
PRINT_FILES = ("trained_pair_prints.npy", "trained_input_prints.npy", "trained_print_tasks.json")


def save_prints(folder: Path, prints: Prints | None) -> None:
    """The fingerprints of what was trained on, beside a dataset or a checkpoint (no pickle)."""
    if prints is None:
        return
    pairs, inputs, ids = prints.arrays()
    np.save(folder / PRINT_FILES[0], pairs)
    np.save(folder / PRINT_FILES[1], inputs)
    (folder / PRINT_FILES[2]).write_bytes(orjson.dumps(ids))


def load_prints(folder: Path) -> Prints | None:
    """The fingerprints saved beside a dataset or checkpoint; None for a folder without them (an
    older arc-trm's, an imported checkpoint's)."""
    folder = Path(folder)
    if not all((folder / f).is_file() for f in PRINT_FILES):
        return None
    ids = read_json(folder / PRINT_FILES[2], "training fingerprints", list)
    return Prints.from_arrays(np.load(folder / PRINT_FILES[0]), np.load(folder / PRINT_FILES[1]), ids)


@dataclass
class ArcDataset:
    table: PuzzleTable
    pool: np.ndarray          # (G, 30, 30) uint8 grids, top-left aligned, zero padded
    shapes: np.ndarray        # (G, 2) uint8
    ex_task: np.ndarray       # (E,) int32 task index
    ex_input: np.ndarray      # (E,) int32 grid index
    ex_output: np.ndarray     # (E,) int32 grid index, -1 when the answer is hidden
    ex_kind: np.ndarray       # (E,) uint8 DEMO (trained on) or TEST (predicted)
    ex_index: np.ndarray      # (E,) int32 position of a TEST example among its task's test inputs
    is_test_task: np.ndarray  # (T,) bool: task's test inputs are predicted (not trained on)
    manifest: dict
    prints: Prints | None = None    # fingerprints of every pair trained on (arc_trm.data.overlap)

    # ---------------------------------------------------------------- building
    @classmethod
    def build(cls, train_tasks: list[Task], test_tasks: list[Task], n_aug: int, seed: int,
              sources: dict | None = None, canvas: int = CANVAS,
              on_error=None, reuse_plans: PuzzleTable | None = None) -> "ArcDataset":
        """Training tasks contribute every pair with a known answer; test tasks contribute their
        demonstration pairs to training and their test inputs to prediction (as TRM does with
        the evaluation set). ``canvas`` < 30 (CPU demos) skips tasks with larger grids.
        ``reuse_plans``: tasks this table knows keep its plans (predicting with a checkpoint)."""
        if canvas < CANVAS:
            fits = []
            for t in list(train_tasks) + list(test_tasks):
                big = max(max(g.shape) for g in t.all_grids())
                if big > canvas:
                    if on_error is not None:
                        on_error(TaskError(f"has a {big}-cell side; the dataset canvas is {canvas}", task_id=t.task_id))
                else:
                    fits.append(t.task_id)
            if not fits:
                raise ArcTrmError(f"no task fits the {canvas}x{canvas} canvas (every one of the "
                                  f"{len(train_tasks) + len(test_tasks)} has a larger grid); a larger --canvas "
                                  "(data.canvas, at most 30) holds them")
            keep = set(fits)
            train_tasks = [t for t in train_tasks if t.task_id in keep]
            test_tasks = [t for t in test_tasks if t.task_id in keep]
        test_ids = {t.task_id for t in test_tasks}
        tasks = [t for t in train_tasks if t.task_id not in test_ids] + list(test_tasks)
        grids: list[np.ndarray] = []

        def add(g: np.ndarray) -> int:
            grids.append(g)
            return len(grids) - 1

        rows = []  # (task, input, output, kind, index)
        for ti, task in enumerate(tasks):
            is_test = task.task_id in test_ids
            for i, o in task.train:
                rows.append((ti, add(i), add(o), DEMO, -1))
            for k, (i, o) in enumerate(zip(task.test_inputs, task.test_outputs)):
                if is_test:
                    rows.append((ti, add(i), -1 if o is None else add(o), TEST, k))
                elif o is not None:
                    rows.append((ti, add(i), add(o), DEMO, -1))
        pool = np.zeros((len(grids), CANVAS, CANVAS), dtype=np.uint8)
        shapes = np.zeros((len(grids), 2), dtype=np.uint8)
        for g, grid in enumerate(grids):
            pool[g, :grid.shape[0], :grid.shape[1]] = grid
            shapes[g] = grid.shape
        ex = np.array(rows, dtype=np.int64).reshape(-1, 5)
        table = PuzzleTable.build(tasks, n_aug, seed, reuse=reuse_plans)
        prints = Prints()
        for ti, gi, go, kind, _ in rows:
            if kind == DEMO:
                prints.pairs.setdefault(pair_print(grids[gi], grids[go]), set()).add(tasks[ti].task_id)
                prints.inputs.setdefault(grid_print(grids[gi]), set()).add(tasks[ti].task_id)
        manifest = {
            "format_version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "sources": sources or {},
            "seed": seed,
            "augmentations": n_aug,
            "canvas": canvas,
            "seq_len": canvas * canvas,
            "vocab_size": VOCAB_SIZE,
            "num_tasks": len(tasks),
            "num_test_tasks": len(test_ids),
            "num_demo_examples": int((ex[:, 3] == DEMO).sum()),
            "num_test_examples": int((ex[:, 3] == TEST).sum()),
            "num_plans": table.num_plans,
            "num_puzzle_ids": table.end,
            "test_task_ids": [t.task_id for t in test_tasks],
        }
        return cls(table, pool, shapes, ex[:, 0].astype(np.int32), ex[:, 1].astype(np.int32),
                   ex[:, 2].astype(np.int32), ex[:, 3].astype(np.uint8), ex[:, 4].astype(np.int32),
                   np.array([t.task_id in test_ids for t in tasks], dtype=bool), manifest, prints)

    # ---------------------------------------------------------------- disk
    _ARRAYS = ("pool", "shapes", "ex_task", "ex_input", "ex_output", "ex_kind", "ex_index", "is_test_task")

    def save(self, folder: Path) -> None:
        """Atomically (:func:`arc_trm.atomic.replacing_folder`): a failure leaves no half dataset."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with replacing_folder(folder, "dataset") as tmp:
            for key in self._ARRAYS:
                np.save(tmp / f"{key}.npy", getattr(self, key))
            self.table.save(tmp)
            save_prints(tmp, self.prints)
            (tmp / "manifest.json").write_bytes(orjson.dumps(self.manifest, option=orjson.OPT_INDENT_2))

    @staticmethod
    def read_manifest(folder: Path) -> dict:
        mpath = Path(folder) / "manifest.json"
        if not mpath.is_file():
            raise ArcTrmError("not a dataset directory (no manifest.json); run `arc-trm ingest` first",
                              source=str(folder))
        manifest = read_json(mpath, "dataset manifest", dict)
        canvas = manifest.get("canvas", CANVAS)
        if type(canvas) is not int or not 1 <= canvas <= CANVAS:
            raise ArcTrmError(f"dataset manifest: canvas must be a whole number 1..{CANVAS}, found {canvas!r}",
                              source=str(mpath))
        return manifest

    @classmethod
    def load(cls, folder: Path) -> "ArcDataset":
        folder = Path(folder)
        manifest = cls.read_manifest(folder)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ArcTrmError(f"dataset format {manifest.get('format_version')} is not {FORMAT_VERSION}; re-ingest",
                              source=str(folder))
        try:
            arrays = {k: np.load(folder / f"{k}.npy") for k in cls._ARRAYS}
            table = PuzzleTable.load(folder)
            prints = load_prints(folder)
        except (OSError, ValueError, ArcTrmError) as e:
            raise ArcTrmError(f"dataset directory is incomplete or corrupt ({e})", source=str(folder)) from None
        return cls(table=table, manifest=manifest, prints=prints, **arrays)

    # ---------------------------------------------------------------- views
    @property
    def canvas(self) -> int:
        return int(self.manifest.get("canvas", CANVAS))

    @property
    def num_puzzle_ids(self) -> int:
        return self.table.end

    def grid(self, g: int) -> np.ndarray:
        h, w = self.shapes[g]
        return self.pool[g, :h, :w].copy()

    def demo_rows(self) -> np.ndarray:
        return np.flatnonzero(self.ex_kind == DEMO)

    def test_rows(self) -> np.ndarray:
        return np.flatnonzero(self.ex_kind == TEST)

    def test_tasks(self) -> list[Task]:
        """The test tasks rebuilt as :class:`Task` objects (answers where known)."""
        out = []
        for t in np.flatnonzero(self.is_test_task):
            mine = self.ex_task == t
            demos = np.flatnonzero(mine & (self.ex_kind == DEMO))
            tests = np.flatnonzero(mine & (self.ex_kind == TEST))
            tests = tests[np.argsort(self.ex_index[tests])]
            out.append(Task(self.table.task_ids[t],
                            [(self.grid(self.ex_input[r]), self.grid(self.ex_output[r])) for r in demos],
                            [self.grid(self.ex_input[r]) for r in tests],
                            [None if self.ex_output[r] < 0 else self.grid(self.ex_output[r]) for r in tests]))
        return out
