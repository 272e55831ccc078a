"""Progress output where a cluster or the Kaggle notebook keeps it: on a file or a pipe, whole
lines at most once per interval and no carriage returns or cursor moves; on a terminal, tqdm's
live bar."""

import io
import time

from arc_trm import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_on_a_file_writes_plain_lines_once_per_interval(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setenv("ARC_TRM_PROGRESS_S", "0.2")
    bar = progress.bar(50, "train", "step")
    t = time.time()
    for _ in range(50):
        time.sleep(0.01)
        bar.set_postfix(loss="1.000", refresh=False)
        bar.update(1)
    bar.close()
    elapsed = time.time() - t
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert all(line.startswith("train:") for line in lines) and "50/50" in lines[-1]
    assert 2 <= len(lines) <= elapsed / 0.2 + 3            # the first, one per interval, the last


def test_a_bar_on_a_terminal_is_a_live_bar(monkeypatch):
    tty = Terminal()
    monkeypatch.setattr("sys.stderr", tty)
    bar = progress.bar(3, "train", "step")
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert "\r" in tty.getvalue()
    off = io.StringIO()
    monkeypatch.setattr("sys.stderr", off)
    bar = progress.bar(3, "train", "step", enabled=False)
    bar.update(3)
    bar.close()
    assert off.getvalue() == ""
