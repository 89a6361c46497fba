"""Generate the pages that come from the repository's data, at every build (mkdocs-gen-files).

* ``reference/*.md``: one page per public module, one entry per name of its ``__all__``
  (rendered by mkdocstrings from the docstrings), so no public name can be left out;
* ``report/*.md``: each ``<!-- experiment: NAME -->`` marker in the hand-written pages becomes
  the table of ``results/NAME/results.json`` (our number beside the report's) and its committed
  figures; nothing is retyped, so the pages cannot drift from the runs;
* ``performance.md``: the ``<!-- bench-table -->`` marker becomes the table of
  ``benchmarks/results/*.json`` (the same code as ``python benchmarks/run_all.py --readme``);
* ``notebooks/*.ipynb``: the notebooks, with their stored outputs (rendered by mkdocs-jupyter).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# ------------------------------------------------------------------------- API reference

import fnn  # noqa: E402  (the docs build installs fnn[all]; importing gives the __all__ lists)

SUBMODULES = {
    "layers": "Layers: every constructor returns a `Layer(init, apply, vjp)` (with a state "
              "tree for `batch_norm`); shapes are channels-last, batch first. `layer` and "
              "`parameter_free` build your own.",
    "initializers": "Weight initialisers, by name or callable.",
    "datasets": "Loaders (toy sets, digits, USPS, Fashion-MNIST, MNIST), noise, splits.",
    "plot": "Figures: every function returns a matplotlib `Figure` (needs `fnn[plot]`).",
    "threads": "Data parallelism over threads (batch shards, chunks).",
    "distributed": "Data parallelism over MPI ranks: processes on one machine or many (needs "
                   "`fnn[mpi]`).",
    "optim": "Optimisers as composable gradient transformations, schedules, aliases.",
    "augment": "Seeded data augmentation of image batches (shifts, rotations).",
    "perf": "Performance switches kept out of the top-level API.",
    "ops": "The array kernels under the layers, and which implementation runs them (numpy or "
           "compiled).",
    "tree": "The pytree helpers used everywhere (and useful in custom layers and optimisers).",
    "checks": "Input validation and errors for layers, yours included.",
}
TOP_GROUPS = [  # fnn.<module> the name is defined in -> section title on the fnn page
    ("fnn.core", "Layers and gradient functions"),
    ("fnn.combinators", "Combinators"),
    ("fnn.gradients", "Gradients"),
    ("fnn.keys", "Random keys"),
    ("fnn.summaries", "Model summary"),
    ("fnn.training", "Training"),
    ("fnn.checkpoint", "Checkpoints"),
    ("fnn.experiments", "Sweeps"),
    ("fnn.losses", "Losses"),
    ("fnn.optim", "Optimisers"),
    ("fnn.io", "Files"),
    ("fnn.interop", "Exchange: ONNX, PyTorch weights"),
    ("fnn.gradient_check", "Gradient checks"),
    ("fnn.logger", "Callbacks"),
    ("fnn.checks", "Errors"),
    ("fnn.tree", "Trees"),
    ("fnn.perf", "Performance switches"),
]


def _entry(path: str) -> str:
    return f"::: {path}\n"


def _home(obj) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return module if module.startswith("fnn") else "fnn"


def reference_pages() -> None:
    layer_names = set(fnn.layers.__all__)
    groups: dict[str, list[str]] = {}
    modules = []
    for name in fnn.__all__:
        obj = getattr(fnn, name)
        if inspect.ismodule(obj):
            modules.append(name)
        elif name not in layer_names:
            home = _home(obj)
            home = next((g for g, _ in TOP_GROUPS if home.startswith(g)), "other")
            groups.setdefault(home, []).append(name)
    lines = ["# `fnn`", "",
             "Everything is re-exported at the top level: `import fnn` then `fnn.serial`, "
             "`fnn.train`, ... The layer constructors (`fnn.linear`, `fnn.conv2d`, `fnn.relu`, "
             "...) are documented on the [fnn.layers](layers.md) page; the submodules "
             + ", ".join(f"[`fnn.{m}`]({m}.md)" for m in SUBMODULES if m in modules or
                         m in ("tree", "checks"))
             + " have their own pages.", ""]
    for module, title in [*TOP_GROUPS, ("other", "Other")]:
        if groups.get(module):
            lines += [f"## {title}", ""]
            lines += [_entry(f"fnn.{n}") + "    options:\n      heading_level: 3\n"
                      for n in groups[module]]
    with mkdocs_gen_files.open("reference/fnn.md", "w") as f:
        f.write("\n".join(lines))

    # every public submodule gets a page, those added later too (fnn.__all__ names them; add
    # the page to mkdocs.yml's nav, which the strict build asks for)
    pages = dict(SUBMODULES)
    for name in modules:
        if name not in pages:
            doc = inspect.getdoc(getattr(fnn, name)) or ""
            pages[name] = doc.split("\n\n")[0].replace("\n", " ")
    for name, blurb in pages.items():
        module = importlib.import_module(f"fnn.{name}")
        lines = [f"# `fnn.{name}`", "", blurb, "",
                 f"::: fnn.{name}\n    options:\n      members: false\n      show_root_heading: false\n"]
        for member in module.__all__:
            obj = getattr(module, member)
            if inspect.ismodule(obj):
                continue
            path = f"fnn.{name}.{member}"
            if hasattr(module, "__path__") and importlib.util.find_spec(path) is not None:
                # a function named like its submodule (none left since issue 21): griffe would show
                # the module, so document the function where it is defined
                path = f"{obj.__module__}.{member}"
            lines.append(_entry(path))
        with mkdocs_gen_files.open(f"reference/{name}.md", "w") as f:
            f.write("\n".join(lines))


# ------------------------------------------------------------------------- report pages

def _experiment(name: str) -> str:
    folder = ROOT / "results" / name
    payload_path = folder / "results.json"
    if not payload_path.is_file():
        raise FileNotFoundError(f"docs: {payload_path} is missing (run examples/{name}.py)")
    exp = json.loads(payload_path.read_text())
    out = [f"### `{name}`", "",
           f"Measured by `{exp['command']}` on {exp['date']} ({exp.get('seconds') or '?'} s, "
           f"{exp['machine']}).", ""]
    rows = exp.get("rows") or []
    if rows:
        out += ["| what | measured (fnn) | the report |", "|---|---|---|"]
        out += [f"| {r['what']} | {r['measured']} | {r.get('report') or '–'} |" for r in rows]
        out.append("")
    out += _figures(folder, name, name)
    return "\n".join(out)


def _figures(folder: Path, where: str, alt: str) -> list[str]:
    """Copy the PNGs of ``results/<where>/`` (``folder``) into the site's report figures and
    return their Markdown: an image (alt text ``<alt>/<stem>``) and a caption naming the file."""
    out = []
    for png in sorted(folder.glob("*.png")):
        with mkdocs_gen_files.open(f"report/figures/{where}/{png.name}", "wb") as f:
            f.write(png.read_bytes())
        out += [f"![{alt}/{png.stem}](figures/{where}/{png.name})",
                f"/// caption\n`results/{where}/{png.name}`\n///", ""]
    return out


def _docs_link(path: str, label: str) -> str:
    """A repository file as a code span (the site has no page for it); a label as it is."""
    return f"`{path}`" if "." in label and path.endswith(label) else label


def _translation() -> str:
    """The runs of examples/translate.py (``results/translation/<run>/``): the section
    examples/make_results.py writes into RESULTS.md, then the chosen run's figures and example
    translations."""
    spec = importlib.util.spec_from_file_location("fnn_make_results",
                                                  ROOT / "examples" / "make_results.py")
    make_results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_results)
    runs = make_results.load_translation(ROOT / "results")
    chosen = make_results.TRANSLATION_CHOSEN
    out = make_results.translation_section(runs, chosen, title="### `translation`",
                                           link=_docs_link)
    folder = ROOT / "results" / "translation" / chosen
    out += _figures(folder, f"translation/{chosen}", "translation")
    examples = folder / "examples.md"
    if examples.is_file():
        out += [examples.read_text().replace("<", "&lt;"), ""]  # <unk> shown, not as HTML
    return "\n".join(out)


def report_pages() -> None:
    for page in sorted((DOCS / "report").glob("*.md")):
        text = page.read_text()
        new = re.sub(r"<!-- experiment: (\w+) -->", lambda m: _experiment(m.group(1)), text)
        if "<!-- translation -->" in new:
            new = new.replace("<!-- translation -->", _translation())
        if new != text:
            with mkdocs_gen_files.open(f"report/{page.name}", "w") as f:
                f.write(new)


# ------------------------------------------------------------------------- performance

def performance_page() -> None:
    spec = importlib.util.spec_from_file_location("fnn_bench_run_all",
                                                  ROOT / "benchmarks" / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    text = (DOCS / "performance.md").read_text()
    with mkdocs_gen_files.open("performance.md", "w") as f:
        f.write(text.replace("<!-- bench-table -->", run_all.table()))


# ------------------------------------------------------------------------- notebooks

def notebooks() -> None:
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        with mkdocs_gen_files.open(f"notebooks/{nb.name}", "wb") as f:
            f.write(nb.read_bytes())


reference_pages()
report_pages()
performance_page()
notebooks()
