import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture
def data_dir() -> Path:
    """The real datasets folder (FNN_DATA); skips the test when it is absent."""
    root = os.environ.get("FNN_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("FNN_DATA is not set to the real data folder")
    return Path(root)


def _backend_params():
    import fnn

    skip = pytest.mark.skipif(not fnn.ops.available(), reason="numba is not installed")
    return ["numpy", pytest.param("compiled", marks=skip)]


@pytest.fixture(params=_backend_params())
def backend(request):
    """Run the test once per kernel backend (``fnn.ops.using``); the compiled one skips
    without numba."""
    import fnn

    with fnn.ops.using(request.param):
        yield request.param
