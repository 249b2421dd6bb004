"""Reproduce the book: execute every chapter and report every claim.

    python -m theorylab.reproduce [CHAPTER ...] [--book book] [--out _build] [--seed S | --seeds A-B]

Each chapter (``book/NN-*.md``, a jupytext MyST notebook) is executed in a fresh kernel at the
current scale (``THEORYLAB_SCALE``) and seed (``THEORYLAB_SEED``, or ``--seed``). The executed
notebooks, with their outputs and figures, are written to ``OUT/executed/``, each figure also as a PNG
under ``OUT/figures/<chapter>/``. The report, one row per claim (its kind, the numbers, z, the smallest
error a prediction would detect, pass/FAIL/not reached, the source line) plus each chapter's run time,
is printed and saved as ``OUT/reproduce-report.md`` and ``.json``.

A failed claim does not hide the others: chapters run with ``THEORYLAB_CLAIMS_DEFER=1``, so a failed
check is recorded without stopping its cell, and every claim the chapter's source declares but the run
never reached (a cell raised before it) is reported as "not reached". The exit status is 1 when a
claim fails or is not reached, or a chapter raises an error, naming them.

``--seeds A-B`` runs every chapter once per seed (into ``OUT/seed-S/``) and prints, per claim, for how
many seeds it held and whether it measured the same value at every seed (for a claim with no random
draw the seeds are one test, not many); the summary is saved as ``OUT/robustness-report.md``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .chapters import find_chapters
from .claims import Claim, find_claim_sites
from .seeding import base_seed

#: A cell that writes a sentence of the prose from its measurements (:func:`theorylab.prose.say`).
SAY_CALL = re.compile(r"^\s*(?:display\()?say\(", re.M)


@dataclass
class ChapterRun:
    name: str
    seconds: float = 0.0
    claims: list[dict] = field(default_factory=list)
    not_reached: list[dict] = field(default_factory=list)  # declared in the source, never checked
    errors: list[str] = field(default_factory=list)   # errors that are not failed claims
    notebook: str = ""
    seed: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.not_reached and all(c["passed"] for c in self.claims)


def execute_chapter(path: Path, out: Path, timeout: int) -> ChapterRun:
    """Execute one chapter in a fresh kernel, save it, and collect its claims and errors."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from tqdm.auto import tqdm

    from .execution import IpcKernelManager

    run = ChapterRun(path.stem)
    nb = jupytext.read(path)
    code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
    fd, claims_file = tempfile.mkstemp(suffix=".jsonl")
    os.close(fd)
    env_before = {k: os.environ.get(k) for k in ("THEORYLAB_CLAIMS_FILE", "THEORYLAB_CHAPTER",
                                                  "TRITON_INTERPRET", "THEORYLAB_PROGRESS",
                                                  "THEORYLAB_CLAIMS_DEFER")}
    # The executed notebooks are read, not watched: no training progress bars in them. A failed claim
    # is recorded without stopping its cell, so the claims after it are still evaluated.
    os.environ.update(THEORYLAB_CLAIMS_FILE=claims_file, THEORYLAB_CHAPTER=path.stem, THEORYLAB_PROGRESS="0",
                      THEORYLAB_CLAIMS_DEFER="1")
    run.seed = base_seed()
    os.environ.pop("TRITON_INTERPRET", None)  # chapters run the torch path on a CPU
    bar = tqdm(total=code_cells, desc=path.stem, unit="cell", leave=True, disable=None)  # quiet off a TTY
    # IPC transport: Unix sockets instead of TCP ports (and no unencrypted-TCP warning from ipykernel)
    client = NotebookClient(nb, kernel_manager_class=IpcKernelManager, timeout=timeout,
                            kernel_name="python3", allow_errors=True, startup_timeout=180,
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_executed=lambda **kw: bar.update(1) if kw["cell"].cell_type
                            == "code" else None)
    start = time.perf_counter()
    try:
        client.execute()
    except Exception as exc:  # kernel died, timeout: the chapter did not finish
        run.errors.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}")
    finally:
        run.seconds = time.perf_counter() - start
        bar.close()
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    with open(claims_file, encoding="utf-8") as fh:
        run.claims = [json.loads(line) for line in fh if line.strip()]
    os.unlink(claims_file)
    locate_claims(run, path.read_text(encoding="utf-8"))

    for index, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") != "ClaimFailed":
                run.errors.append(f"cell {index}: {output['ename']}: {output['evalue']}")
        if SAY_CALL.search(cell.source) and not any("text/markdown" in o.get("data", {})
                                                     for o in cell.get("outputs", [])):
            run.errors.append(f"cell {index}: its say(...) sentence was not shown (a measured number "
                              "quoted in the prose must come from the executed cell)")
    (out / "executed").mkdir(parents=True, exist_ok=True)
    run.notebook = str(out / "executed" / f"{path.stem}.ipynb")
    nbformat.write(nb, run.notebook)
    save_figures(nb, out / "figures" / path.stem)
    return run


def locate_claims(run: ChapterRun, source: str) -> None:
    """Give each recorded claim its source line, and list the declared claims the run never reached."""
    sites = find_claim_sites(source)
    reached = set()
    for claim in run.claims:
        hits = [s for s in sites if s.matches(claim["id"])]
        claim["line"] = hits[0].line if hits else None
        reached.update(id(s) for s in hits)
    run.not_reached = [{"id": s.text, "line": s.line} for s in sites if id(s) not in reached]


def save_figures(nb, folder: Path) -> int:
    """Write every PNG output of ``nb`` to ``folder/cell<k>-<j>.png``; returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    count = 0
    for k, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for j, output in enumerate(cell.get("outputs", [])):
            data = output.get("data", {}).get("image/png")
            if data:
                (folder / f"cell{k:02d}-{j}.png").write_bytes(base64.b64decode(data))
                count += 1
    return count


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


HEADER = ["chapter", "seed", "claim", "kind", "measured", "expected", "tolerance", "z", "detects",
          "result", "line", "statement"]


def report_rows(runs: list[ChapterRun]) -> list[list[str]]:
    """One row per claim of every run (in the order of ``HEADER``), not-reached claims included."""
    rows = []
    for run in runs:
        for record in run.claims:
            c = Claim(**{k: v for k, v in record.items() if k in Claim.__dataclass_fields__})
            expected = _fmt(c.expected) if c.relation == "close" else f"{c.relation} {_fmt(c.expected)}"
            tolerance = f"± {c.tolerance_value:.3g}" if c.relation == "close" else "bound"
            z = "" if c.z is None else f"{c.z:+.1f}"
            detects = "" if c.detects is None else f"{c.detects:.1%}"
            rows.append([run.name, str(run.seed), c.id, c.kind, _fmt(c.measured), expected, tolerance, z,
                         detects, "pass" if c.passed else "FAIL", _fmt(record.get("line")), c.statement])
        for site in run.not_reached:
            rows.append([run.name, str(run.seed), site["id"], "", "", "", "", "", "", "not reached",
                         _fmt(site["line"]), ""])
    return rows


def format_table(rows: list[list[str]], header: list[str] = HEADER, max_cell: int = 48) -> str:
    shown = [[c if len(c) <= max_cell else c[: max_cell - 1] + "…" for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in shown)) if shown else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, shown)])


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows)]


def kind_counts(runs: list[ChapterRun]) -> dict[str, dict[str, int]]:
    """Claims per kind per chapter: ``{chapter: {kind: count}}``."""
    counts: dict[str, dict[str, int]] = {}
    for run in runs:
        per = counts.setdefault(run.name, {})
        for c in run.claims:
            per[c.get("kind", "")] = per.get(c.get("kind", ""), 0) + 1
    return counts


def write_reports(runs: list[ChapterRun], out: Path, scale: str) -> None:
    md = [f"# Reproduction report (scale: {scale}, seed: {base_seed()})", ""]
    md += markdown_table(HEADER, report_rows(runs))
    md += ["", "| chapter | seconds | claims | not reached | status |", "|---|---|---|---|---|"]
    md += [f"| {r.name} | {r.seconds:.1f} | {len(r.claims)} | {len(r.not_reached)} | "
           f"{'ok' if r.ok else 'FAILED'} |" for r in runs]
    (out / "reproduce-report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out / "reproduce-report.json").write_text(json.dumps(
        {"scale": scale, "seed": base_seed(), "chapters": [r.__dict__ for r in runs]}, indent=1),
        encoding="utf-8")


def robustness_rows(by_seed: dict[int, list[ChapterRun]]) -> list[list[str]]:
    """Per claim: chapter, id, kind, seeds held / seeds run, the seeds where it failed or was not
    reached, and ``"yes"`` when it was reached at every seed (two or more) and measured the very same
    value at each. That is a hint, not a verdict: a claim with no random draw (its statement says so) is
    one test however many seeds ran, while one whose runs from different random starts converge to the
    same number, or a count that saturates, was tested afresh at each seed."""
    table: dict[tuple[str, str], dict] = {}
    seeds = sorted(by_seed)
    for s in seeds:
        for run in by_seed[s]:
            for c in run.claims:
                entry = table.setdefault((run.name, c["id"]), {"kind": c.get("kind", ""), "held": [],
                                                              "missed": [], "values": []})
                (entry["held"] if c["passed"] else entry["missed"]).append(s)
                entry["values"].append(c["measured"])
            for site in run.not_reached:
                entry = table.setdefault((run.name, site["id"]), {"kind": "", "held": [], "missed": [],
                                                                  "values": []})
                entry["missed"].append(s)
    rows = []
    for (chapter, claim_id), entry in table.items():
        missed = sorted(set(entry["missed"]) | (set(seeds) - set(entry["held"]) - set(entry["missed"])))
        held = len(set(entry["held"]) - set(missed))
        values = entry["values"]
        same = len(seeds) > 1 and len(values) == len(seeds) and all(v == values[0] for v in values)
        rows.append([chapter, claim_id, entry["kind"], f"{held}/{len(seeds)}", ",".join(map(str, missed)),
                     "yes" if same else ""])
    return rows


ROBUSTNESS_HEADER = ["chapter", "claim", "kind", "held", "failed or not reached at seeds",
                     "same value at every seed"]


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` → ``[0, …, 9]``; ``"3"`` → ``[3]``; ``"0,2,5"`` → ``[0, 2, 5]``."""
    seeds = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            seeds.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ValueError(f"--seeds must look like 0-9 or 0,3,5, got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds must name non-negative seeds, got {text!r}")
    return seeds


def run_chapters(chapters: list[Path], out: Path, timeout: int, scale: str) -> list[ChapterRun]:
    runs = [execute_chapter(path, out, timeout) for path in chapters]
    write_reports(runs, out, scale)
    return runs


def _print_failures(runs: list[ChapterRun]) -> None:
    for run in runs:
        for c in run.claims:
            if not c["passed"]:
                print(f"FAILED claim {run.name}::{c['id']} (seed {run.seed}, line {c.get('line')}): "
                      f"measured {_fmt(c['measured'])}, expected {c['relation']} {_fmt(c['expected'])}",
                      file=sys.stderr)
        for site in run.not_reached:
            print(f"NOT REACHED {run.name}::{site['id']} (seed {run.seed}, line {site['line']})",
                  file=sys.stderr)
        for error in run.errors:
            print(f"ERROR in {run.name} (seed {run.seed}): {error}", file=sys.stderr)


def _with_seed(seed: int):
    os.environ["THEORYLAB_SEED"] = str(seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theorylab.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapters to run (default: all)")
    parser.add_argument("--book", type=Path, default=Path("book"), help="folder of the chapters")
    parser.add_argument("--out", type=Path, default=Path("_build"), help="output folder")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--seed", type=int,
                       help="THEORYLAB_SEED for this run (default: the environment's, or 0)")
    group.add_argument("--seeds", help="run every chapter once per seed, e.g. 0-9, and count per claim "
                                       "for how many seeds it held")
    args = parser.parse_args(argv)

    saved_seed = os.environ.get("THEORYLAB_SEED")
    try:
        scale = config.scale()
        chapters = find_chapters(args.book, args.chapters)
        seeds = parse_seeds(args.seeds) if args.seeds else None
        if args.seed is not None:
            if args.seed < 0:
                raise ValueError(f"--seed must be non-negative, got {args.seed}")
            _with_seed(args.seed)
        base_seed()
    except ValueError as exc:
        parser.error(str(exc))
    try:
        if seeds is None:
            return _single(chapters, args, scale)
        return _robustness(chapters, args, scale, seeds)
    finally:
        if saved_seed is None:
            os.environ.pop("THEORYLAB_SEED", None)
        else:
            os.environ["THEORYLAB_SEED"] = saved_seed


def _single(chapters: list[Path], args, scale: str) -> int:
    print(f"theorylab: reproducing {len(chapters)} chapter(s) at scale '{scale}', seed {base_seed()}, "
          f"on {config.device()}", flush=True)
    runs = run_chapters(chapters, args.out, args.timeout, scale)
    print("\n" + format_table(report_rows(runs)))
    print("\nchapter run times:")
    for run in runs:
        status = "ok" if run.ok else "FAILED"
        extra = f", {len(run.not_reached)} not reached" if run.not_reached else ""
        print(f"  {run.name:<40} {run.seconds:7.1f} s  {len(run.claims):3d} claims{extra}  {status}")
    print(f"\nexecuted notebooks: {args.out / 'executed'}; report: {args.out / 'reproduce-report.md'}")
    failed = [run for run in runs if not run.ok]
    if not failed:
        total = sum(len(r.claims) for r in runs)
        print(f"all {total} claims hold in {len(runs)} chapter(s).")
        return 0
    _print_failures(failed)
    return 1


def _robustness(chapters: list[Path], args, scale: str, seeds: list[int]) -> int:
    print(f"theorylab: {len(chapters)} chapter(s) at scale '{scale}' for seeds {seeds[0]}…{seeds[-1]} "
          f"({len(seeds)} runs each) on {config.device()}", flush=True)
    by_seed: dict[int, list[ChapterRun]] = {}
    for s in seeds:
        _with_seed(s)
        by_seed[s] = run_chapters(chapters, args.out / f"seed-{s}", args.timeout, scale)
        held = sum(c["passed"] for r in by_seed[s] for c in r.claims)
        total = sum(len(r.claims) + len(r.not_reached) for r in by_seed[s])
        print(f"  seed {s}: {held}/{total} claims hold, "
              f"{sum(r.seconds for r in by_seed[s]):.0f} s", flush=True)
    rows = robustness_rows(by_seed)
    print("\n" + format_table(rows, ROBUSTNESS_HEADER))
    counts = kind_counts(by_seed[seeds[0]])
    kinds = ["prediction", "identity", "bound", "observation"]
    count_rows = [[name, *(str(per.get(k, 0)) for k in kinds), str(sum(per.values()))]
                  for name, per in counts.items()]
    print(f"\nclaims per kind (seed {seeds[0]}):\n" + format_table(count_rows, ["chapter", *kinds, "total"]))
    md = [f"# Robustness report (scale: {scale}, seeds {args.seeds})", ""]
    md += markdown_table(ROBUSTNESS_HEADER, rows)
    md += ["", "## Claims per kind", ""] + markdown_table(["chapter", *kinds, "total"], count_rows)
    same = [r for r in rows if r[5]]
    if same:
        note = (f"{len(same)} of {len(rows)} claims measured the same value at every seed. Some involve "
                "no random draw (a closed form; chapter 8's statements say so) and are one test however many "
                "seeds ran; others reached the same value from different random draws (runs converging to "
                "the same point, counts at their maximum).")
        print("\n" + note)
        md += ["", note]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "robustness-report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    weak = [r for r in rows if r[4]]
    errors = [(s, run) for s, runs in by_seed.items() for run in runs if run.errors]
    if not weak and not errors:
        print(f"\nevery claim held for all {len(seeds)} seeds.")
        return 0
    print(f"\n{len(weak)} claim(s) did not hold for every seed.", file=sys.stderr)
    for s, run in errors:
        for error in run.errors:
            print(f"ERROR in {run.name} (seed {s}): {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
