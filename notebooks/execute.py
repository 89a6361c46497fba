"""Execute every notebook in quick mode and store its outputs (figures included), so the
notebooks show their figures when browsed and on the docs site.

    python notebooks/execute.py            # all notebooks (make notebooks)
    python notebooks/execute.py 3_1_dense_networks.ipynb

Quick mode (``FNN_QUICK=1``) trains on tiny subsets for a few epochs: the stored figures show
what each experiment draws, not the full runs' results (those are in ``results/`` and on the
docs' report pages). Results of the runs go to a temporary folder (``FNN_RESULTS``); the
outputs are written back without execution counts' noise or machine-specific paths.
"""

from __future__ import annotations

import base64
import io
import os
import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat
from PIL import Image

HERE = Path(__file__).resolve().parent
MAX_WIDTH = 900  # pixels of a stored figure; larger ones are scaled down


def small_png(data: str) -> str:
    """A stored figure, scaled to at most MAX_WIDTH pixels and reduced to a 256-colour palette
    (plots have few colours): the notebooks stay small enough to commit."""
    img = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    if img.width > MAX_WIDTH:
        img = img.resize((MAX_WIDTH, round(img.height * MAX_WIDTH / img.width)), Image.LANCZOS)
    buf = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def execute(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as results:
        os.environ.update(FNN_QUICK="1", MPLBACKEND="Agg", FNN_RESULTS=results)
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}}).execute()
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.metadata.pop("execution", None)
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    raise RuntimeError(f"{path.name}: {out.get('ename')}: {out.get('evalue')}")
                if out.get("output_type") == "stream":
                    out["text"] = out["text"].replace(results, "$FNN_RESULTS")
                if "image/png" in out.get("data", {}):
                    out["data"]["image/png"] = small_png(out["data"]["image/png"])
    nbformat.write(nb, path)
    print(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB", file=sys.stderr)


def main(argv: list[str]) -> int:
    # the real data sets, as `make test` finds them (the USPS notebook needs them)
    os.environ.setdefault("FNN_DATA", str((HERE.parents[1] / "shared" / "data").resolve()))
    paths = [HERE / a for a in argv] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        execute(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
