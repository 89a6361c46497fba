# Two set-up commands (see README): `make demo` and `make test` (mypy over fnn/, then the
# tests). Each creates .venv if needed.
# `make docs` builds the documentation site into site/ (strict); `make serve-docs` serves it.
PYTHON ?= python3
VENV   := .venv
# real datasets (USPS, Fashion-MNIST) for the slow tests and reproductions; see README
export FNN_DATA ?= $(abspath ../shared/data)
PY     := $(VENV)/bin/python

.PHONY: demo test docs serve-docs notebooks bench lint clean reproduce reproduce-quick bench-sweep

# the demo needs the plots and scikit-learn's digits: everything but the dev tools
$(VENV)/.installed-base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-base
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed-base
	$(PY) -m fnn.demo

# two pytest workers (pytest-xdist), each test module on one worker so that a module's fixtures
# (the docs site, a Dask cluster) are built once: a fresh clone's run took 7 min 50 s against
# 9 min 46 s in one process on the 2-core CI machine (many tests already start processes)
test: $(VENV)/.installed-dev
	$(PY) -m mypy
	$(PY) -m pytest -n 2 --dist loadscope

# (the two variables silence a banner some plugins print about MkDocs 2; see mkdocs.yml)
DOCS_ENV := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true MPLBACKEND=Agg

docs: $(VENV)/.installed-dev
	$(DOCS_ENV) $(PY) -m mkdocs build --strict --site-dir site

serve-docs: $(VENV)/.installed-dev
	$(DOCS_ENV) $(PY) -m mkdocs serve

# re-execute the notebooks in quick mode and store their outputs (figures) in them
notebooks: $(VENV)/.installed-dev
	$(PY) notebooks/execute.py

# fnn (numpy and compiled kernels), PyTorch CPU and JAX CPU at all cores and at 1 thread, then
# the same with glibc's default malloc settings; writes the tables into README.md
bench: $(VENV)/.installed-dev
	$(PY) -m pip install -q 'torch==2.13.0' jax jaxlib
	$(PY) benchmarks/run_all.py
	$(PY) benchmarks/run_all.py --default-malloc

# every reproduction of the report through fnn.sweep, then RESULTS.md (~1 hour on 2 cores);
# e.g. make reproduce REPRODUCE_ARGS="--scheduler tcp://host:8786" or "--only denoising"
reproduce: $(VENV)/.installed-dev
	$(PY) examples/reproduce.py $(REPRODUCE_ARGS)

reproduce-quick: $(VENV)/.installed-dev
	$(PY) examples/reproduce.py --quick --workers 2 $(REPRODUCE_ARGS)

# fnn.sweep's overhead per trial and usps_conv1d_sweeps in-process vs 2 workers
bench-sweep: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_sweep.py

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check fnn tests benchmarks examples docs

clean:
	rm -rf $(VENV) build site *.egg-info fnn-demo-output
