import math

import numpy as np
import pytest

import fnn
from fnn import initializers


@pytest.mark.parametrize("name,std", [
    ("xavier_normal", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("xavier_uniform", lambda fi, fo: math.sqrt(6 / (fi + fo)) / math.sqrt(3)),
    ("he_normal", lambda fi, fo: math.sqrt(2 / fi)),
    ("he_uniform", lambda fi, fo: math.sqrt(6 / fi) / math.sqrt(3)),
    ("lecun_normal", lambda fi, fo: math.sqrt(1 / fi)),
    ("normal", lambda fi, fo: 1.0),
    ("uniform", lambda fi, fo: 1 / math.sqrt(3)),
])
@pytest.mark.parametrize("shape,fans", [((400, 300), (400, 300)), ((5, 8, 60), (40, 300)),
                                        ((3, 3, 16, 32), (144, 288))])
def test_scale_follows_the_formula(name, std, shape, fans):
    assert initializers.fans(shape) == fans
    w = initializers.get(name)(fnn.key(0), shape)
    assert w.dtype == np.float32 and w.shape == shape
    assert np.std(w) == pytest.approx(std(*fans), rel=0.03)
    assert abs(np.mean(w)) < 0.05 * std(*fans) + 1e-3
    if "uniform" in name:
        assert np.abs(w).max() <= std(*fans) * math.sqrt(3) + 1e-6


def test_constants_dtype_and_callables():
    assert np.all(initializers.get("ones")(None, (2, 3)) == 1)
    assert np.all(initializers.get("zeros")(None, (2,), np.float64) == 0)
    custom = lambda key, shape, dtype=np.float32: np.full(shape, 0.5, dtype)  # noqa: E731
    _, params = fnn.linear(2, w_init=custom, b_init="ones").init(fnn.key(0), (-1, 3))
    assert np.all(params["w"] == 0.5) and np.all(params["b"] == 1)


def test_unknown_initializer_names_the_choices():
    with pytest.raises(ValueError, match="he_normal"):
        fnn.linear(3, w_init="kaiming")
