"""pytest collects the doctests of ``fnn/`` too (``--doctest-modules``): skip the module of
compiled kernels where numba is not installed (importing it imports numba)."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("numba") else ["fnn/ops/compiled.py"]
