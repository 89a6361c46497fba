"""Execute every notebook in quick mode and store its outputs (figures included), so the
notebooks show their figures when browsed and on the docs site.

    python notebooks/execute.py            # all notebooks (make notebooks)
    python notebooks/execute.py 3_1_dense_networks.ipynb
    python notebooks/execute.py --tidy     # only tidy the stored outputs, no execution

Quick mode (``FNN_QUICK=1``) trains on tiny subsets for a few epochs: the stored figures show
what each experiment draws, not the full runs' results (those are in ``results/`` and on the
docs' report pages); a note under each title says so. Results of the runs go to a temporary
folder (``FNN_RESULTS``). Stored outputs are tidied: figures scaled to at most ``MAX_WIDTH``
pixels in a 256-colour palette, progress bars dropped, temporary paths replaced.
"""

from __future__ import annotations

import base64
import io
import os
import re
import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat
from PIL import Image

HERE = Path(__file__).resolve().parent
MAX_WIDTH = 700  # pixels of a stored figure; larger ones are scaled down
PROGRESS = re.compile(r"^.*\d+%\|.*$\n?|^.*\r", flags=re.M)  # tqdm lines
NOTE_MARK = "<!-- stored outputs: quick mode -->"
NOTE = (NOTE_MARK + "\n> The outputs stored in this notebook come from a quick run "
        "(`FNN_QUICK=1`: tiny subsets, a few epochs), to show what each experiment prints and "
        "draws. The full runs' numbers and figures are in `results/` and on the documentation "
        "site's report pages; run this notebook without `FNN_QUICK` to reproduce them.")


def small_png(data: str) -> str:
    """A stored figure, scaled to at most MAX_WIDTH pixels and reduced to a 256-colour palette
    (plots have few colours): the notebooks stay small enough to commit."""
    img = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    if img.width > MAX_WIDTH:
        img = img.resize((MAX_WIDTH, round(img.height * MAX_WIDTH / img.width)), Image.LANCZOS)
    buf = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def add_note(nb) -> None:
    """Say, under the title, that the stored outputs come from quick mode (once)."""
    if not any(NOTE_MARK in "".join(c.source) for c in nb.cells if c.cell_type == "markdown"):
        cell = nbformat.v4.new_markdown_cell(NOTE)
        if nb.nbformat_minor < 5:  # cell ids came with nbformat 4.5
            del cell["id"]
        nb.cells.insert(1, cell)


def tidy(nb, results: str | None = None) -> None:
    add_note(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                raise RuntimeError(f"{out.get('ename')}: {out.get('evalue')}")
            if out.get("output_type") == "stream":
                text = out["text"].replace(results, "$FNN_RESULTS") if results else out["text"]
                if out.get("name") == "stderr":
                    text = PROGRESS.sub("", text)
                if not text.strip():
                    continue
                out["text"] = text
            if "image/png" in out.get("data", {}):
                out["data"]["image/png"] = small_png(out["data"]["image/png"])
            kept.append(out)
        cell.outputs = kept


def execute(path: Path, run: bool = True) -> None:
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as results:
        if run:
            os.environ.update(FNN_QUICK="1", MPLBACKEND="Agg", FNN_RESULTS=results)
            nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}}).execute()
        tidy(nb, results)
    nbformat.write(nb, path)
    print(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB", file=sys.stderr)


def main(argv: list[str]) -> int:
    # the real data sets, as `make test` finds them (the USPS notebook needs them)
    os.environ.setdefault("FNN_DATA", str((HERE.parents[1] / "shared" / "data").resolve()))
    run = "--tidy" not in argv
    names = [a for a in argv if a != "--tidy"]
    for path in [HERE / a for a in names] or sorted(HERE.glob("*.ipynb")):
        execute(path, run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
