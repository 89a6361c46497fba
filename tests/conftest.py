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
