"""Reproduce the book: execute every chapter and report every claim.

    python -m theorylab.reproduce [CHAPTER ...] [--book book] [--out _build]

Each chapter (``book/NN-*.md``, a jupytext MyST notebook) is executed in a fresh kernel at the
current scale (``THEORYLAB_SCALE``). The executed notebooks, with their outputs and figures, are
written to ``OUT/executed/``, each figure also as a PNG under ``OUT/figures/<chapter>/``. The report,
one row per claim plus each chapter's run time, is printed and saved as ``OUT/reproduce-report.md``
and ``.json``. The exit status is 1 when a claim fails or a chapter raises an error, naming them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .chapters import find_chapters
from .claims import Claim


@dataclass
class ChapterRun:
    name: str
    seconds: float = 0.0
    claims: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # errors that are not failed claims
    notebook: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and all(c["passed"] for c in self.claims)


def execute_chapter(path: Path, out: Path, timeout: int) -> ChapterRun:
    """Execute one chapter in a fresh kernel, save it, and collect its claims and errors."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from tqdm.auto import tqdm

    run = ChapterRun(path.stem)
    nb = jupytext.read(path)
    code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
    fd, claims_file = tempfile.mkstemp(suffix=".jsonl")
    os.close(fd)
    env_before = {k: os.environ.get(k) for k in ("THEORYLAB_CLAIMS_FILE", "THEORYLAB_CHAPTER",
                                                  "TRITON_INTERPRET", "THEORYLAB_PROGRESS")}
    # The executed notebooks are read, not watched: no training progress bars in them.
    os.environ.update(THEORYLAB_CLAIMS_FILE=claims_file, THEORYLAB_CHAPTER=path.stem, THEORYLAB_PROGRESS="0")
    os.environ.pop("TRITON_INTERPRET", None)  # chapters run the torch path on a CPU
    bar = tqdm(total=code_cells, desc=path.stem, unit="cell", leave=True)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
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

    for index, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") != "ClaimFailed":
                run.errors.append(f"cell {index}: {output['ename']}: {output['evalue']}")
    (out / "executed").mkdir(parents=True, exist_ok=True)
    run.notebook = str(out / "executed" / f"{path.stem}.ipynb")
    nbformat.write(nb, run.notebook)
    save_figures(nb, out / "figures" / path.stem)
    return run


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
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def report_rows(runs: list[ChapterRun]) -> list[list[str]]:
    rows = []
    for run in runs:
        for record in run.claims:
            c = Claim(**record)
            expected = _fmt(c.expected) if c.relation == "close" else f"{c.relation} {_fmt(c.expected)}"
            rows.append([run.name, c.id, c.statement, _fmt(c.measured), expected, c.tolerance,
                         "pass" if c.passed else "FAIL"])
    return rows


HEADER = ["chapter", "claim", "statement", "measured", "expected", "tolerance", "result"]


def format_table(rows: list[list[str]], max_statement: int = 58) -> str:
    shown = [r[:2] + [r[2] if len(r[2]) <= max_statement else r[2][: max_statement - 1] + "…"] + r[3:]
             for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in shown)) if shown else len(h)
              for i, h in enumerate(HEADER)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(HEADER), line(["-" * w for w in widths]), *map(line, shown)])


def write_reports(runs: list[ChapterRun], out: Path, scale: str) -> None:
    rows = report_rows(runs)
    md = [f"# Reproduction report (scale: {scale})", "", "| " + " | ".join(HEADER) + " |",
          "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
    md += ["", "| chapter | seconds | claims | status |", "|---|---|---|---|"]
    md += [f"| {r.name} | {r.seconds:.1f} | {len(r.claims)} | {'ok' if r.ok else 'FAILED'} |" for r in runs]
    (out / "reproduce-report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out / "reproduce-report.json").write_text(json.dumps(
        {"scale": scale, "chapters": [r.__dict__ for r in runs]}, indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theorylab.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapters to run (default: all)")
    parser.add_argument("--book", type=Path, default=Path("book"), help="folder of the chapters")
    parser.add_argument("--out", type=Path, default=Path("_build"), help="output folder")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = parser.parse_args(argv)

    scale = config.scale()
    try:
        chapters = find_chapters(args.book, args.chapters)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"theorylab: reproducing {len(chapters)} chapter(s) at scale '{scale}' "
          f"on {config.device()}", flush=True)
    runs = [execute_chapter(path, args.out, args.timeout) for path in chapters]
    write_reports(runs, args.out, scale)

    print("\n" + format_table(report_rows(runs)))
    print("\nchapter run times:")
    for run in runs:
        status = "ok" if run.ok else "FAILED"
        print(f"  {run.name:<40} {run.seconds:7.1f} s  {len(run.claims):3d} claims  {status}")
    print(f"\nexecuted notebooks: {args.out / 'executed'}; report: {args.out / 'reproduce-report.md'}")
    failed = [run for run in runs if not run.ok]
    if not failed:
        total = sum(len(r.claims) for r in runs)
        print(f"all {total} claims hold in {len(runs)} chapter(s).")
        return 0
    for run in failed:
        for c in run.claims:
            if not c["passed"]:
                print(f"FAILED claim {run.name}::{c['id']}: measured {_fmt(c['measured'])}, "
                      f"expected {c['relation']} {_fmt(c['expected'])}", file=sys.stderr)
        for error in run.errors:
            print(f"ERROR in {run.name}: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
