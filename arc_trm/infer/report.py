"""``arc-trm report``: one self-contained HTML page for an evaluation, to read rather than grep.

Everything is inline (styles, a few lines of plain JavaScript, the grids as data drawn onto canvases),
so the page opens in any browser offline and survives being mailed or attached to a discussion. It
holds: each submission's summary as ``score`` prints it (pass@2 by ARC Prize's rule, the share of test
outputs, pass@1, repeated and fallback attempts) and, with candidate files, the oracle top-k, labelled
as what it is; several submissions side by side (each one's solved tasks, their union and
intersection); breakdowns by grid size, number of test inputs and colours; a run's curves; and one row
per task (demonstrations, test inputs, both attempts with ✓/✗ and their vote share, the truth) with
sorting and filters. Tasks whose answer the model trained on are marked.

Every pass@2 on the page is over the *scored* tasks: those no submission's checkpoint was chosen on
(``NAME.chosen-on.json`` beside a submission, or ``--checkpoint``'s record). The chosen-on tasks'
figure stands in its own column with the selection mark, their rows carry a badge, and two
submissions are compared paired over the scored tasks (an exact sign test: "not distinguishable"
when the tasks where they differ could split so by chance). Each figure is named as the papers
name it (:data:`arc_trm.infer.score.DEFINITIONS`).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from arc_trm.atomic import write_bytes
from arc_trm.data.overlap import Overlap, duplicates
from arc_trm.data.tasks import Task, inputs_of
from arc_trm.infer.interval import interval_text, paired
from arc_trm.infer.score import DEFINITIONS, Score, SplitScore, split_score
from arc_trm.infer.selection import MARK, eval_line


@dataclass
class Entry:
    """One submission in the report: its name, its attempts and, when given, its candidate lists."""

    name: str
    submission: dict
    candidates: dict | None = None             # task → per test input → ranked entries (arc-trm-candidates/1)
    score: Score | None = None
    overlap: Overlap | None = None             # what the checkpoint behind it trained on of these tasks
    trained_on: str = ""                       # that checkpoint's folder
    chosen: set[str] = field(default_factory=set)   # tasks its checkpoint was chosen on (best/'s selection split)
    split: SplitScore | None = None            # scored apart on every entry's chosen-on tasks


@dataclass
class RunSection:
    """A training run's part of the page: its curves (PNG bytes) and the evaluation records."""

    folder: str
    curves_png: bytes | None
    evals: list[dict] = field(default_factory=list)


def _grid(g) -> str:
    """A grid as the page's data holds it: "HxW:" then one digit per cell."""
    a = np.asarray(g)
    return f"{a.shape[0]}x{a.shape[1]}:" + "".join(map(str, a.reshape(-1).tolist()))


def _bucket(value: int, edges: list[tuple[int, str]]) -> str:
    return next(label for top, label in edges if value <= top)


SIZE = [(5, "≤ 5"), (10, "6–10"), (20, "11–20"), (30, "21–30")]
TESTS = [(1, "1"), (2, "2"), (99, "3+")]
COLOURS = [(3, "1–3"), (5, "4–5"), (7, "6–7"), (10, "8–10")]


def task_features(t: Task) -> dict[str, str]:
    """The breakdown each task falls in: its largest test output's (else input's) side, its number of test
    inputs, and the number of colours in all its grids."""
    grids = [o for o in t.test_outputs if o is not None] or list(t.test_inputs)
    side = max(max(g.shape) for g in grids)
    colours = len(np.unique(np.concatenate([g.reshape(-1) for g in t.all_grids()])))
    return {"grid side": _bucket(side, SIZE), "test inputs": _bucket(len(t.test_inputs), TESTS),
            "colours": _bucket(colours, COLOURS)}


def oracle_top_k(candidates: dict, answers: dict[str, list]) -> tuple[float, int]:
    """The share a solver with unlimited attempts would score (by ARC Prize's per-task rule) if every
    listed candidate were an attempt; and the largest list length. Not a score: Kaggle takes two."""
    per_task, k = [], 0
    for task_id, ans in answers.items():
        lists = candidates.get(task_id) or []
        hit = 0
        for i, a in enumerate(ans):
            entries = lists[i] if i < len(lists) else []
            k = max(k, len(entries))
            hit += any(e["grid"] == np.asarray(a).tolist() for e in entries)
        per_task.append(hit / max(len(ans), 1))
    return (sum(per_task) / max(len(per_task), 1), k)


def _share(entries: list[dict], grid) -> str:
    """The vote share of ``grid`` among the produced candidates (its score where no votes were counted)."""
    produced = [e for e in entries if not e.get("fallback")]
    votes = sum(e.get("votes", 0) for e in produced)
    for e in entries:
        if e["grid"] == grid:
            if e.get("fallback"):
                return "fallback"
            return f"{e.get('votes', 0)}/{votes} votes" if votes else f"score {e.get('score', 0):.3g}"
    return ""


def build_report(entries: list[Entry], tasks: list[Task], answers: dict[str, list], spec: str,
                 run: RunSection | None = None) -> str:
    """The page, as one HTML string. Each entry's ``overlap`` (from the checkpoint behind it) gives
    its count of answers seen in training, its pass@2 without those tasks and the tasks' marks."""
    inputs = inputs_of(tasks)
    chosen = set().union(*(e.chosen for e in entries)) & set(answers) if entries else set()
    for e in entries:       # the same scored tasks for every entry, so that they compare paired
        e.split = split_score(e.submission, answers, inputs, chosen)
        e.score = e.split.whole
    seen_by = {t.task_id: [e.name for e in entries if e.overlap is not None and t.task_id in e.overlap.answers]
               for t in tasks}
    solved_by = {e.name: {t for t, s in e.score.per_task.items() if s > 0} for e in entries}
    data_tasks = []
    for t in tasks:
        row = {"id": t.task_id, "train": [[_grid(i), _grid(o)] for i, o in t.train],
               "tests": [], "scores": {}, "seen": seen_by[t.task_id], "features": task_features(t),
               "chosen": t.task_id in chosen}
        for k, inp in enumerate(t.test_inputs):
            known = answers.get(t.task_id) or []
            truth = known[k] if k < len(known) else None
            attempts = []
            for e in entries:
                sub = e.submission.get(t.task_id) or []
                got = sub[k] if k < len(sub) and isinstance(sub[k], dict) else {}
                lists = (e.candidates or {}).get(t.task_id) or []
                cand = lists[k] if k < len(lists) else []
                pair = []
                for a in ("attempt_1", "attempt_2"):
                    g = got.get(a)
                    ok = None if truth is None or g is None else g == np.asarray(truth).tolist()
                    pair.append({"grid": _grid(g) if g is not None else None, "ok": ok,
                                 "share": _share(cand, g) if cand and g is not None else ""})
                attempts.append(pair)
            row["tests"].append({"input": _grid(inp), "truth": _grid(truth) if truth is not None else None,
                                 "attempts": attempts})
        for e in entries:
            row["scores"][e.name] = e.score.per_task.get(t.task_id)
        data_tasks.append(row)
    return _page(entries, data_tasks, spec, answers, run, solved_by, duplicates(tasks), chosen)


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def comparisons(entries: list[Entry]) -> list[str]:
    """Each pair of submissions compared paired over the scored tasks, in words."""
    out = []
    for i, a in enumerate(entries):
        for b in entries[i + 1:]:
            if a.split.scored is not None and b.split.scored is not None:
                out.append(paired(a.split.scored.per_task, b.split.scored.per_task).text(a.name, b.name))
    return out


def _page(entries, data_tasks, spec, answers, run, solved_by, dups, chosen) -> str:
    esc = html.escape
    n_out = sum(len(v) for v in answers.values())
    scored_ids = set(answers) - chosen
    data_tasks_all, data_tasks = data_tasks, [t for t in data_tasks if not t["chosen"]]
    solved_by = {n: v - chosen for n, v in solved_by.items()}
    rows = []
    for e in entries:
        s = e.split.scored or Score(0.0, 0)
        sel = (f'<span class=chosen>{e.split.selected.score:.4f} over {e.split.selected.tasks}: {esc(MARK)}</span>'
               if e.split.selected is not None else "—")
        oracle = seen = rest = "—"
        if e.candidates is not None:
            share, k = oracle_top_k(e.candidates, answers)
            oracle = f"{share:.4f} (top {k})"
        if e.overlap is not None:       # the score a reader can trust: tasks whose answers it never trained on
            held = [t for t in s.per_task if t in e.overlap.answers]
            clean = [v for t, v in s.per_task.items() if t not in e.overlap.answers]
            seen = str(len(held))
            rest = f"{sum(clean) / len(clean):.4f} over {len(clean)}" if clean else "no task left"
        rows.append([f"<b>{esc(e.name)}</b>", f'<span class="pass2" data-name="{esc(e.name)}">{s.score:.4f}</span>',
                     esc(interval_text(s.per_task.values())),
                     f"{s.per_output:.4f} ({s.outputs_solved} of {s.outputs})", f"{s.pass1:.4f}", oracle,
                     str(s.fallback_entries), str(s.same_attempts), seen, rest, sel])
    summary = _table(["submission", f"pass@2 over {len(scored_ids)} scored tasks", "its 95 % interval",
                      "per test output", "pass@1", "oracle top-k (not a score)", "fallback entries",
                      "attempt_2 = attempt_1", "answers seen in training", "pass@2 without them",
                      "pass@2 on the tasks a checkpoint was chosen on"], rows, "summary")
    defs = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in DEFINITIONS.items())
    parts = [f"<h1>arc-trm evaluation report</h1><p>{len(data_tasks_all)} tasks of <code>{esc(spec)}</code>, "
             f"{n_out} test outputs with answers; {len(entries)} submission(s)"
             + (f"; {len(chosen)} of the tasks are ones a checkpoint was chosen on (best/'s selection split): "
                "they are left out of every figure but their own marked column" if chosen else "") + ".</p>",
             "<h2>Summary</h2>", summary,
             f"<p class=note>What each figure is, as the papers name it:</p><ul class=note>{defs}</ul>"
             "<p class=note>The share of test outputs differs from pass@2 whenever tasks have several. An oracle "
             "top-k counts every listed candidate as an attempt: it bounds what a better second attempt could reach "
             "and is <b>not a score</b>. An attempt_2 that repeats attempt_1 turns that entry's pass@2 into pass@1; "
             "a fallback entry answers with the test input. The interval is the exact binomial (Clopper-Pearson) "
             "one over the scored tasks.</p>"]
    if len(entries) > 1:
        parts += ["<h2>Paired comparison</h2><ul>"
                  + "".join(f"<li>{esc(line)}</li>" for line in comparisons(entries)) + "</ul>"]
    if len(entries) > 1:
        names = list(solved_by)
        union = set().union(*solved_by.values())
        inter = set.intersection(*solved_by.values())
        only = {n: solved_by[n] - set().union(*(solved_by[m] for m in names if m != n)) for n in names}
        crows = [[esc(n), str(len(solved_by[n])), str(len(only[n]))] for n in names]
        crows += [["<b>union</b> (what an ensemble could reach)", str(len(union)), ""],
                  ["<b>intersection</b>", str(len(inter)), ""]]
        parts += ["<h2>Side by side</h2>",
                  _table(["submission", "tasks with a solved output", "solved by it alone"], crows, "compare")]
    for dim in ("grid side", "test inputs", "colours"):
        labels = sorted({t["features"][dim] for t in data_tasks},
                        key=lambda lab: [b for _, b in SIZE + TESTS + COLOURS].index(lab))
        brows = []
        for lab in labels:
            mine = [t for t in data_tasks if t["features"][dim] == lab and t["id"] in answers]
            cells = [f"{np.mean([t['scores'][e.name] or 0.0 for t in mine]):.3f}" if mine else "—" for e in entries]
            brows.append([esc(lab), str(len(mine))] + cells)
        parts.append(f"<h3>by {dim}</h3>" + _table([dim, "tasks"] + [f"pass@2 {esc(e.name)}" for e in entries],
                                                   brows, "breakdown"))
    checked = {}
    for e in entries:                   # one paragraph per checkpoint, naming the submissions behind it
        if e.overlap is not None:
            checked.setdefault(e.trained_on, (e.overlap, []))[1].append(e.name)
    if checked:
        parts.append("<h2>Seen in training</h2>")
        for folder, (ov, names) in checked.items():
            where = f"{folder} (behind {', '.join(names)})"
            parts.append("<p>" + ("; ".join(esc(w) for w in ov.warnings(where)) or
                                  f"No test pair, test input or demonstration of these tasks is in {esc(where)}.")
                         + "</p>")
    if dups:
        parts.append("<h2>Duplicates in this set</h2><p>" + "; ".join(
            f"{esc(a)} and {esc(b)} share {esc(what)}" for a, b, what in dups) + "</p>")
    if run is not None:
        img = (f'<img alt="training curves" src="data:image/png;base64,{base64.b64encode(run.curves_png).decode()}">'
               if run.curves_png else "<p>no curves yet</p>")
        ev = run.evals[-1] if run.evals else None
        line = esc(eval_line(int(ev.get("step", 0)), ev)) if ev else "no evaluation yet"
        parts.append(f"<h2>Run <code>{esc(run.folder)}</code></h2>{img}<p>last evaluation: {line}</p>")
    names = [e.name for e in entries]
    parts.append("""<h2>Tasks</h2><div class=controls>show <select id=filter>
<option value=all>all</option><option value=solved>solved (by any)</option><option value=unsolved>unsolved</option>
<option value=one>solved by only one submission</option><option value=seen>answer seen in training</option>
<option value=chosen>a checkpoint was chosen on it</option></select>
sort by <select id=sort><option value=id>task id</option><option value=score>score, best first</option>
<option value=size>grid size</option></select> <span id=count></span></div><div id=tasks></div>""")
    data = orjson.dumps({"names": names, "tasks": data_tasks_all}).decode().replace("</", "<\\/")
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>arc-trm report: {esc(spec)}</title>
<style>{_CSS}</style></head><body>{''.join(parts)}
<script id=data type="application/json">{data}</script>
<script>{_JS}</script></body></html>
"""


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}h3{font-size:15px;margin:14px 0 4px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f2f2f2}.note{color:#555;font-size:13px;max-width:900px}code{background:#f4f4f4;padding:0 3px}
.controls{margin:8px 0}.task{border:1px solid #ddd;border-radius:6px;margin:8px 0;padding:8px}
.task h4{margin:0 0 6px;font-size:14px}.seen{background:#fff3cd;border:1px solid #e0b000;border-radius:3px;
padding:0 4px;font-size:12px;margin-left:6px}.chosen{background:#fde2e2;border:1px solid #c00;
border-radius:3px;padding:0 4px;font-size:12px;margin-left:6px}.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.cell{display:inline-flex;flex-direction:column;align-items:center;font-size:11px;color:#555}
canvas{image-rendering:pixelated;border:1px solid #999;background:#000}.ok{color:#0a0;font-weight:bold}
.bad{color:#c00;font-weight:bold}.pair{display:inline-flex;gap:2px;padding:2px;border-right:1px dashed #ccc}
.sub{border-left:3px solid #88a;padding-left:6px}img{max-width:100%;height:auto}
"""

_JS = """
const PALETTE=['#000000','#0074D9','#FF4136','#2ECC40','#FFDC00','#AAAAAA','#F012BE','#FF851B','#7FDBFF','#870C25'];
const D=JSON.parse(document.getElementById('data').textContent);
function draw(code,px){const c=document.createElement('canvas');if(!code){c.width=c.height=8;return c;}
const [hw,cells]=code.split(':');const [h,w]=hw.split('x').map(Number);const s=Math.max(2,Math.floor(px/Math.max(h,w)));
c.width=w*s;c.height=h*s;const g=c.getContext('2d');
for(let y=0;y<h;y++)for(let x=0;x<w;x++){g.fillStyle=PALETTE[+cells[y*w+x]];g.fillRect(x*s,y*s,s,s);}return c;}
function cell(code,label,px,cls){const d=document.createElement('div');d.className='cell';d.appendChild(draw(code,px));
const l=document.createElement('span');l.innerHTML=label;if(cls)l.className=cls;d.appendChild(l);return d;}
function side(t){let m=0;for(const x of t.tests){const g=x.truth||x.input;const [h,w]=g.split(':')[0].split('x').map(Number);m=Math.max(m,h,w);}return m;}
function best(t){let m=-1;for(const n of D.names){const s=t.scores[n];if(s!==null&&s>m)m=s;}return m;}
function solvers(t){return D.names.filter(n=>(t.scores[n]||0)>0).length;}
function render(){const f=document.getElementById('filter').value,o=document.getElementById('sort').value;
let ts=D.tasks.filter(t=>f==='all'||(f==='solved'&&solvers(t)>0)||(f==='unsolved'&&solvers(t)===0)||
(f==='one'&&solvers(t)===1)||(f==='seen'&&t.seen.length>0)||(f==='chosen'&&t.chosen));
if(o==='score')ts=ts.slice().sort((a,b)=>best(b)-best(a));else if(o==='size')ts=ts.slice().sort((a,b)=>side(b)-side(a));
else ts=ts.slice().sort((a,b)=>a.id<b.id?-1:1);
const root=document.getElementById('tasks');root.innerHTML='';document.getElementById('count').textContent=ts.length+' tasks';
for(const t of ts){const d=document.createElement('div');d.className='task';d.dataset.id=t.id;
const h=document.createElement('h4');h.textContent=t.id+'  '+D.names.map(n=>n+': '+(t.scores[n]===null?'—':t.scores[n].toFixed(2))).join('   ');
if(t.seen.length){const s=document.createElement('span');s.className='seen';
s.textContent='answer seen in training'+(D.names.length>1?' by '+t.seen.join(', '):'');h.appendChild(s);}
if(t.chosen){const s=document.createElement('span');s.className='chosen';
s.textContent='chosen on: a checkpoint was selected by this task, its score is left out of every figure';h.appendChild(s);}
d.appendChild(h);const demos=document.createElement('div');demos.className='row';
for(const [i,o] of t.train){const p=document.createElement('div');p.className='pair';p.appendChild(cell(i,'in',40));p.appendChild(cell(o,'out',40));demos.appendChild(p);}
d.appendChild(demos);
t.tests.forEach((x,k)=>{const r=document.createElement('div');r.className='row';r.style.marginTop='6px';
r.appendChild(cell(x.input,'test input '+(k+1),70));r.appendChild(cell(x.truth,'truth',70));
x.attempts.forEach((pair,j)=>{const s=document.createElement('div');s.className='row sub';
pair.forEach((a,m)=>{const mark=a.ok===null?'':(a.ok?' ✓':' ✗');s.appendChild(cell(a.grid,D.names[j]+' '+(m+1)+mark+(a.share?'<br>'+a.share:''),70,a.ok===null?'':(a.ok?'ok':'bad')));});
r.appendChild(s);});d.appendChild(r);});root.appendChild(d);}}
document.getElementById('filter').onchange=render;document.getElementById('sort').onchange=render;render();
"""


def write_report(path: Path, page: str) -> Path:
    return write_bytes(Path(path), page.encode())
