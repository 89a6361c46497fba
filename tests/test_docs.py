"""The documentation site: it builds in strict mode (a broken link, a missing reference or a
warning of any plugin fails), its pages have content and their images exist, every public name
has an entry in the API reference, and every code block of the hand-written pages runs."""

import html
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fnn

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
QUIET = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    out = tmp_path_factory.mktemp("site")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **QUIET, "MPLBACKEND": "Agg"})
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "WARNING" not in proc.stderr.replace("WARNING: MkDocs may break", "")
    assert seconds < 120, f"the docs build took {seconds:.0f} s"
    return out


def text_of(page: Path) -> str:
    body = re.sub(r"<script.*?</script>|<style.*?</style>", "", page.read_text(), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def images_exist(page: Path) -> list[str]:
    srcs = re.findall(r'<img[^>]+src="([^"]+)"', page.read_text())
    local = [s for s in srcs if not s.startswith(("http:", "https:", "data:"))]
    missing = [s for s in local if not (page.parent / s).resolve().is_file()]
    assert not missing, f"{page}: missing images {missing}"
    return local


def test_config_is_strict():
    assert re.search(r"^strict: true$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)


def test_index_page(site):
    page = site / "index.html"
    text = text_of(page)
    assert "pure-functional neural-network library" in text
    for link in ("getting-started/", "concepts/", "reference/", "report/", "performance/"):
        assert f'href="{link}' in page.read_text()


def test_api_pages_have_every_public_name(site):
    layers = site / "reference" / "layers" / "index.html"
    text = text_of(layers)
    assert "Hyperbolic tangent" in text and ">>> import numpy as np, fnn" in text
    pages = {p: p.read_text() for p in (site / "reference").glob("*/index.html")}
    everything = "\n".join(pages.values())
    for module_name in ("fnn", "fnn.layers", "fnn.initializers", "fnn.datasets", "fnn.plot",
                        "fnn.threads", "fnn.tree", "fnn.checks"):
        module = sys.modules.get(module_name) or __import__(module_name, fromlist=["_"])
        for name in module.__all__:
            if module_name == "fnn" and (name in fnn.layers.__all__ or
                                         type(getattr(fnn, name)).__name__ == "module"):
                continue
            defined_in = getattr(getattr(module, name), "__module__", module_name)
            assert f'id="{module_name}.{name}"' in everything or \
                f'id="{defined_in}.{name}"' in everything, f"{module_name}.{name}"


def test_report_pages_show_figures_and_numbers(site):
    for name, experiments in {"3_1": ["init_schemes", "learning_rate", "activations"],
                              "3_2": ["usps_conv1d", "usps_conv1d_sweeps"],
                              "3_3": ["fashion_autoencoders", "latent_tsne", "denoising"],
                              "beyond": ["conv_autoencoder", "fashion_classifier", "usps_bn_cnn",
                                         "char_lm"]}.items():
        page = site / "report" / name / "index.html"
        text = text_of(page)
        assert "<!-- experiment" not in page.read_text()
        images = images_exist(page)
        for exp in experiments:
            assert f"python examples/{exp}.py" in text
            figures = sorted((ROOT / "results" / exp).glob("*.png"))
            assert figures and all(any(f"{exp}/{f.name}" in s for s in images) for f in figures)
    # the translation runs (results/translation/<run>/): the table, the chosen run's figures
    page = site / "report" / "beyond" / "index.html"
    text, images = text_of(page), images_exist(page)
    assert "<!-- translation" not in page.read_text() and "python examples/translate.py" in text
    chosen = json.loads((ROOT / "results" / "translation" / "transformer_256" /
                         "results.json").read_text())["metrics"]
    assert f"{chosen['models']['transformer']['beam5']['bleu']:.1f}" in text
    assert "not reached" in text and "&lt;unk&gt;" not in text and "<unk>" in text
    figures = sorted((ROOT / "results" / "translation" / "transformer_256").glob("*.png"))
    assert figures and all(any(f"translation/transformer_256/{f.name}" in s for s in images)
                           for f in figures)
    # a number from results.json appears beside the report's
    text = text_of(site / "report" / "3_2" / "index.html")
    assert "97.08" in text or "99.36" in text


def test_performance_page_has_the_benchmark_table(site):
    text = text_of(site / "performance" / "index.html")
    assert "lenet_100_steps" in text and "PyTorch CPU" in text and "bench-table" not in text


def test_notebooks_are_rendered_with_figures(site):
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = site / "notebooks" / nb.stem / "index.html"
        assert page.is_file(), page
        assert "<img" in page.read_text(), f"{nb.name} has no figure in the docs"


CODE_PAGES = sorted(p for p in DOCS.rglob("*.md") if "report" not in p.parts
                    and "reference" not in p.parts and p.name != "performance.md")


@pytest.mark.parametrize("page", CODE_PAGES, ids=[str(p.relative_to(DOCS)) for p in CODE_PAGES])
def test_code_blocks_of_the_page_run(page, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    if not blocks:
        pytest.skip("no python code on this page")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs__"}
    has_torch = importlib.util.find_spec("torch") is not None
    skipped = []  # without torch (an optional oracle): its blocks, and those needing their names
    for i, block in enumerate(blocks):
        if not has_torch and re.search(r"\btorch\b", block):
            skipped.append(i)
            continue
        try:
            exec(compile(block, f"{page.name}[block {i}]", "exec"), namespace)
        except NameError:
            if not skipped:
                raise
            skipped.append(i)
    if skipped:
        pytest.skip(f"blocks {skipped} need torch (pip install torch==2.13.0); the others ran")
