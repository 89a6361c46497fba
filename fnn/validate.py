"""Argument checks, one home for all of fnn: positive ints, numbers in a range, learning rates,
batch sizes, choices. Each returns the value in its plain Python type or raises a ``ValueError``
worded the same way everywhere: ``"{who}: {name} must be {expected}, got {value!r}"``.

``who`` is the function or layer the user called (``"adam"``, ``"conv2d(8, 3)"``), ``name`` the
argument. Layers' input arrays are checked by :mod:`fnn.checks`; this module checks the
hyper-parameters given to constructors, optimisers, schedules, data pipelines and loops.

>>> from fnn.validate import positive_int, real
>>> positive_int("batches", "batch_size", 32)
32
>>> real("dropout", "rate", 1.5, lo=0.0, hi=1.0, hi_open=True)
Traceback (most recent call last):
...
ValueError: dropout: rate must be a number in [0.0, 1.0), got 1.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def _fail(who: str, name: str, expected: str, value: Any, kind: bool = False) -> ValueError:
    got = f"{value!r} ({type(value).__name__})" if kind else f"{value!r}"
    return ValueError(f"{who}: {name} must be {expected}, got {got}")


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy, not a bool).

    >>> from fnn.validate import is_int
    >>> is_int(3), is_int(True), is_int(3.0)
    (True, False, False)
    """
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_))


def integer(who: str, name: str, value: Any, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
    """``int(value)`` if it is an int in ``[minimum, maximum]`` (either bound optional).

    >>> from fnn.validate import integer
    >>> integer("train", "epochs", 0, minimum=0)
    0
    >>> integer("train", "epochs", 2.5, minimum=0)
    Traceback (most recent call last):
    ...
    ValueError: train: epochs must be an int >= 0, got 2.5 (float)
    """
    if minimum is not None and maximum is not None:
        expected = f"an int in [{minimum}, {maximum}]"
    elif minimum is not None:
        expected = "a positive int" if minimum == 1 else f"an int >= {minimum}"
    elif maximum is not None:
        expected = f"an int <= {maximum}"
    else:
        expected = "an int"
    if not is_int(value):
        raise _fail(who, name, expected, value, kind=True)
    too_low = minimum is not None and int(value) < minimum
    if too_low or (maximum is not None and int(value) > maximum):
        raise _fail(who, name, expected, value)
    return int(value)


def positive_int(who: str, name: str, value: Any) -> int:
    """``int(value)`` if it is an int > 0 (sizes, counts, batch sizes).

    >>> from fnn.validate import positive_int
    >>> positive_int("linear", "out_dim", 0)
    Traceback (most recent call last):
    ...
    ValueError: linear: out_dim must be a positive int, got 0
    """
    if is_int(value) and value > 0:  # the usual case, without building a message
        return int(value)
    return integer(who, name, value, minimum=1)


def batch_size(who: str, value: Any) -> int:
    """A batch size: a positive int (the check every data pipeline and loop makes).

    >>> from fnn.validate import batch_size
    >>> batch_size("predict", "64")
    Traceback (most recent call last):
    ...
    ValueError: predict: batch_size must be a positive int, got '64' (str)
    """
    return positive_int(who, "batch_size", value)


def int_tuple(who: str, name: str, value: Any, n: int, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int, or ``n`` ints) as an ``n``-tuple of ints ``>= minimum`` (kernel
    sizes, strides, factors).

    >>> from fnn.validate import int_tuple
    >>> int_tuple("max_pool2d", "kernel_size", 2, 2)
    (2, 2)
    >>> int_tuple("conv2d", "stride", (1, 0), 2)
    Traceback (most recent call last):
    ...
    ValueError: conv2d: stride must be an int >= 1 or 2 of them, got (1, 0)
    """
    values = (value,) * n if is_int(value) else tuple(value) if isinstance(
        value, (tuple, list)) else ()
    if len(values) != n or not all(is_int(v) and v >= minimum for v in values):
        raise _fail(who, name, f"an int >= {minimum} or {n} of them", value)
    return tuple(int(v) for v in values)


def real(who: str, name: str, value: Any, *, lo: float = -math.inf, hi: float = math.inf,
         lo_open: bool = False, hi_open: bool = False, expected: str | None = None) -> float:
    """``float(value)`` if it is a finite real number (numpy scalars and 0-d arrays too) in
    the interval from ``lo`` to ``hi`` (closed ends unless ``lo_open``/``hi_open``).

    >>> from fnn.validate import real
    >>> real("adam", "b1", 0.9, lo=0.0, hi=1.0, hi_open=True)
    0.9
    >>> real("adam", "eps", float("nan"), lo=0.0)
    Traceback (most recent call last):
    ...
    ValueError: adam: eps must be a finite number >= 0.0, got nan
    """
    if expected is None:
        if lo == -math.inf and hi == math.inf:
            expected = "a finite number"
        elif hi == math.inf:
            expected = f"a finite number {'>' if lo_open else '>='} {lo}"
        elif lo == -math.inf:
            expected = f"a finite number {'<' if hi_open else '<='} {hi}"
        else:
            expected = (f"a number in {'(' if lo_open else '['}{lo}, {hi}"
                        f"{')' if hi_open else ']'}")
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _fail(who, name, expected, value, kind=True)
    v = float(value)
    if (not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo)
            or (hi_open and v == hi)):
        raise _fail(who, name, expected, value)
    return v


def positive(who: str, name: str, value: Any) -> float:
    """A finite number > 0 (learning rates, clipping norms, epsilons that must not vanish).

    >>> from fnn.validate import positive
    >>> positive("clip_by_global_norm", "max_norm", 0)
    Traceback (most recent call last):
    ...
    ValueError: clip_by_global_norm: max_norm must be a finite number > 0, got 0
    """
    return real(who, name, value, lo=0.0, lo_open=True, expected="a finite number > 0")


def non_negative(who: str, name: str, value: Any) -> float:
    """A finite number >= 0 (weight decay, noise levels).

    >>> from fnn.validate import non_negative
    >>> non_negative("add_decayed_weights", "weight_decay", 0)
    0.0
    """
    return real(who, name, value, lo=0.0, expected="a finite number >= 0")


def decay_rate(who: str, name: str, value: Any) -> float:
    """A number in [0, 1): moving-average decays, momenta, Adam's betas.

    >>> from fnn.validate import decay_rate
    >>> decay_rate("scale_by_adam", "b2", 1.0)
    Traceback (most recent call last):
    ...
    ValueError: scale_by_adam: b2 must be a number in [0, 1), got 1.0
    """
    return real(who, name, value, lo=0.0, hi=1.0, hi_open=True, expected="a number in [0, 1)")


def fraction(who: str, name: str, value: Any, *, hi_open: bool = False) -> float:
    """A number in [0, 1] (or [0, 1) with ``hi_open``): rates, shares, probabilities.

    >>> from fnn.validate import fraction
    >>> fraction("xor", "test_size", 0.25, hi_open=True)
    0.25
    """
    return real(who, name, value, lo=0.0, hi=1.0, hi_open=hi_open,
                expected=f"a number in [0, 1{')' if hi_open else ']'}")


Schedule = Callable[[int], float]


def learning_rate(who: str, lr: Any) -> float | Schedule:
    """A finite float > 0, or a schedule ``step -> lr`` whose value at step 0 is a finite
    number >= 0 (warm-ups start at 0).

    >>> from fnn.validate import learning_rate
    >>> learning_rate("sgd", 0.1)
    0.1
    >>> learning_rate("sgd", -0.1)
    Traceback (most recent call last):
    ...
    ValueError: sgd: lr must be a finite number > 0 or a schedule step -> lr, got -0.1
    """
    if callable(lr):
        real(who, "lr(0)", lr(0), lo=0.0,
             expected="a finite number >= 0 (lr is a schedule step -> lr)")
        return lr
    return real(who, "lr", lr, lo=0.0, lo_open=True,
                expected="a finite number > 0 or a schedule step -> lr")


def one_of(who: str, name: str, value: T, choices: Iterable[T]) -> T:
    """``value`` if it is one of ``choices``.

    >>> from fnn.validate import one_of
    >>> one_of("EarlyStopping", "mode", "mean", ("min", "max"))
    Traceback (most recent call last):
    ...
    ValueError: EarlyStopping: mode must be one of ('min', 'max'), got 'mean'
    """
    options = tuple(choices)
    if value not in options:
        raise _fail(who, name, f"one of {options!r}", value)
    return value


def boolean(who: str, name: str, value: Any) -> bool:
    """``value`` if it is a bool (Python or numpy): flags given as ``"False"`` are refused.

    >>> from fnn.validate import boolean
    >>> boolean("batches", "shuffle", "no")
    Traceback (most recent call last):
    ...
    ValueError: batches: shuffle must be True or False, got 'no' (str)
    """
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(who, name, "True or False", value, kind=True)
    return bool(value)


__all__ = ["batch_size", "boolean", "decay_rate", "fraction", "int_tuple", "integer", "is_int",
           "learning_rate", "non_negative", "one_of", "positive", "positive_int", "real"]
