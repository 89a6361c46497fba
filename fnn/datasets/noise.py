"""Corruptions for denoising experiments, on data scaled to [0, 1].

All three are pure: they return a new array of ``x``'s shape and dtype (integer input gives
float32) and never change ``x``. ``rng`` is an int seed, an fnn key (``fnn.key(0)``, a
``numpy.random.SeedSequence``) or a ``numpy.random.Generator`` (which advances, as
Generators do); the global ``np.random`` state is never used. The same seed or key gives the
same noise.
"""

from __future__ import annotations

import numpy as np

from fnn.validate import real


def _generator(rng, fn: str) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.SeedSequence) or (
        isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)
    ):
        return np.random.default_rng(rng)
    raise TypeError(
        f"{fn}: rng must be an int seed, an fnn key (fnn.key(...)) or a numpy Generator, "
        f"got {type(rng).__name__}"
    )


def _as_float(x) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


def _fraction(value, name: str, fn: str) -> float:
    return real(fn, name, value, lo=0.0, hi=1.0, expected="a fraction in [0, 1] (0.2 for 20%)")


def gaussian_noise(x, level: float, rng) -> np.ndarray:
    """``x`` plus Gaussian noise of standard deviation ``level``, clipped to [0, 1].

    ``level`` is a fraction of the [0, 1] range: "20% noise" is ``level=0.2`` (std 0.2).
    Shapes: any ``x``; the result has ``x``'s shape and (floating) dtype.

    >>> import numpy as np

from fnn.validate import real
    >>> x = np.full((1000, 64), 0.5, np.float32)
    >>> y = gaussian_noise(x, 0.2, rng=0)
    >>> y.shape, y.dtype, round(float(y.std()), 2), bool((x == 0.5).all())
    ((1000, 64), dtype('float32'), 0.2, True)
    """
    level = _fraction(level, "level", "gaussian_noise")
    gen = _generator(rng, "gaussian_noise")
    x = _as_float(x)
    noise = gen.standard_normal(x.shape, dtype=x.dtype if x.dtype in (np.float32, np.float64)
                                else np.float64)
    return np.clip(x + (level * noise).astype(x.dtype), 0, 1).astype(x.dtype, copy=False)


def salt_and_pepper(x, amount: float, rng) -> np.ndarray:
    """Set each value independently, with probability ``amount``, to 0 or 1 (half each).

    On average a fraction ``amount`` of the values is replaced (some already had that value).
    Shapes: any ``x``; the result has ``x``'s shape and (floating) dtype.

    >>> import numpy as np

from fnn.validate import real
    >>> x = np.full((100, 100), 0.5, np.float32)
    >>> y = salt_and_pepper(x, 0.1, rng=0)
    >>> round(float((y != x).mean()), 2), sorted(set(np.unique(y).tolist()))
    (0.1, [0.0, 0.5, 1.0])
    """
    amount = _fraction(amount, "amount", "salt_and_pepper")
    gen = _generator(rng, "salt_and_pepper")
    x = _as_float(x)
    u = gen.random(x.shape)
    out = np.where(u < amount / 2, 0.0, x)
    out = np.where((u >= amount / 2) & (u < amount), 1.0, out)
    return out.astype(x.dtype, copy=False)


def masking(x, fraction: float, rng) -> np.ndarray:
    """Zero each value independently with probability ``fraction`` (masking noise).

    On average a ``fraction`` of the values (pixels, for ``(N, D)`` or ``(N, H, W, 1)`` images)
    becomes 0. Shapes: any ``x``; the result has ``x``'s shape and (floating) dtype.

    >>> import numpy as np

from fnn.validate import real
    >>> x = np.ones((100, 100), np.float32)
    >>> y = masking(x, 0.25, rng=0)
    >>> round(float((y == 0).mean()), 2), float(x.min())
    (0.25, 1.0)
    """
    fraction = _fraction(fraction, "fraction", "masking")
    gen = _generator(rng, "masking")
    x = _as_float(x)
    return np.where(gen.random(x.shape) < fraction, 0.0, x).astype(x.dtype, copy=False)
