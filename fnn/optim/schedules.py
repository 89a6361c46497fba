"""Learning-rate schedules: plain functions ``step -> lr`` (``step`` counts updates from 0).

Pass one wherever an optimiser takes ``lr``; :func:`fnn.optim.stats` reports the value used.
Every schedule also accepts a fractional ``step``, which is what :func:`in_epochs` feeds them::

    spe = len(x_train) // batch_size                       # updates per epoch
    lr = fnn.optim.in_epochs(fnn.optim.warmup_cosine_decay(1e-3, 2, 30), spe)
    opt = fnn.adamw(lr)                                    # 2 warm-up epochs, cosine to epoch 30

All constructors check their arguments and raise ``ValueError`` naming the schedule.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

from fnn._deprecated import renamed
from fnn.validate import Schedule, non_negative, positive, positive_int, real


def constant(value: float) -> Schedule:
    """``lr_t = value``.

    >>> constant(0.1)(1000)
    0.1
    """
    value = non_negative("constant", "value", value)
    return lambda step: value


def step_decay(lr: float, factor: float, every: float) -> Schedule:
    """``lr_t = lr * factor ** floor(step / every)`` (``torch.optim.lr_scheduler.StepLR`` with
    ``step_size=every, gamma=factor``, stepped per update).

    >>> step_decay(1.0, 0.5, 10)(25)
    0.25
    """
    lr = non_negative("step_decay", "lr", lr)
    factor = non_negative("step_decay", "factor", factor)
    every = positive("step_decay", "every", every)
    return lambda step: lr * factor ** math.floor(step / every)


def exponential_decay(lr: float, rate: float, every: float = 1, *, staircase: bool = False) -> Schedule:
    """``lr_t = lr * rate ** (step / every)`` (``floor(step / every)`` with ``staircase``);
    ``every=1`` is ``torch.optim.lr_scheduler.ExponentialLR(gamma=rate)`` stepped per update.

    >>> round(exponential_decay(1.0, 0.5, 10)(5), 6), exponential_decay(1.0, 0.5, 10, staircase=True)(5)
    (0.707107, 1.0)
    """
    lr = non_negative("exponential_decay", "lr", lr)
    rate = non_negative("exponential_decay", "rate", rate)
    every = positive("exponential_decay", "every", every)
    if staircase:
        return lambda step: lr * rate ** math.floor(step / every)
    return lambda step: lr * rate ** (step / every)


def cosine_decay(lr: float, steps: float, final: float = 0.0) -> Schedule:
    """From ``lr`` to ``final`` along half a cosine over ``steps`` updates, then ``final``:
    ``lr_t = final + (lr - final) (1 + cos(pi min(t, steps) / steps)) / 2``
    (``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=steps, eta_min=final)`` for t <= steps).

    >>> cosine_decay(1.0, 100)(50), cosine_decay(1.0, 100, final=0.1)(200)
    (0.5, 0.1)
    """
    lr = non_negative("cosine_decay", "lr", lr)
    steps = positive("cosine_decay", "steps", steps)
    final = non_negative("cosine_decay", "final", final)
    return lambda step: final + 0.5 * (lr - final) * (1 + math.cos(math.pi * min(step, steps) / steps))


def linear_schedule(start: float, end: float, steps: float) -> Schedule:
    """From ``start`` to ``end`` in a straight line over ``steps`` updates, then ``end``
    (``torch.optim.lr_scheduler.LinearLR`` with factors ``start/lr`` and ``end/lr``).
    Formerly ``fnn.optim.linear`` (a deprecated alias now: ``fnn.linear`` is the layer).

    >>> linear_schedule(0.0, 1.0, 4)(1), linear_schedule(0.0, 1.0, 4)(9)
    (0.25, 1.0)
    """
    start = non_negative("linear_schedule", "start", start)
    end = non_negative("linear_schedule", "end", end)
    steps = positive("linear_schedule", "steps", steps)
    return lambda step: start + (end - start) * min(max(step, 0) / steps, 1.0)


linear = renamed(linear_schedule, "fnn.optim.linear", "fnn.optim.linear_schedule")


def linear_warmup(peak: float, warmup_steps: float, start: float = 0.0) -> Schedule:
    """Linear warm-up from ``start`` to ``peak`` over ``warmup_steps`` updates, then ``peak``.

    >>> [linear_warmup(1.0, 4)(t) for t in (0, 2, 4, 100)]
    [0.0, 0.5, 1.0, 1.0]
    """
    peak = non_negative("linear_warmup", "peak", peak)
    return linear_schedule(start, peak, warmup_steps)


def piecewise(values: Sequence[float], boundaries: Sequence[float]) -> Schedule:
    """Piecewise constant: ``values[i]`` for ``boundaries[i-1] <= step < boundaries[i]``
    (``len(values) == len(boundaries) + 1``, boundaries increasing). With values
    ``lr * gamma ** i`` it is ``torch.optim.lr_scheduler.MultiStepLR(milestones=boundaries)``.

    >>> s = piecewise([0.1, 0.01, 0.001], [10, 20])
    >>> s(9), s(10), s(25)
    (0.1, 0.01, 0.001)
    """
    values = [non_negative("piecewise", f"values[{i}]", v) for i, v in enumerate(values)]
    bounds = _boundaries("piecewise", boundaries, len(values) - 1, "values")
    return lambda step: values[bisect.bisect_right(bounds, step)]


def _boundaries(who: str, boundaries, n: int, what: str) -> list[float]:
    bounds = [non_negative(who, f"boundaries[{i}]", b) for i, b in enumerate(boundaries)]
    if len(bounds) != n:
        raise ValueError(f"{who}: needs len(boundaries) == len({what}) - 1 = {n}, "
                         f"got {len(bounds)} boundaries")
    if any(b >= c for b, c in zip(bounds, bounds[1:])):
        raise ValueError(f"{who}: boundaries must increase, got {list(boundaries)}")
    return bounds


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[float]) -> Schedule:
    """``schedules[i]`` from ``boundaries[i-1]`` on, each seeing the steps since its own start
    (``step - boundaries[i-1]``), as ``optax.join_schedules``
    (``torch.optim.lr_scheduler.SequentialLR(schedulers, milestones=boundaries)``).

    >>> s = join_schedules([linear_schedule(0.0, 1.0, 10), cosine_decay(1.0, 10)], [10])
    >>> s(5), s(10), s(15)
    (0.5, 1.0, 0.5)
    """
    schedules = list(schedules)
    for i, s in enumerate(schedules):
        if not callable(s):
            raise ValueError(f"join_schedules: schedules[{i}] must be a schedule step -> lr, got {s!r}")
    bounds = _boundaries("join_schedules", boundaries, len(schedules) - 1, "schedules")
    starts = [0.0, *bounds]

    def schedule(step):
        i = bisect.bisect_right(bounds, step)
        return schedules[i](step - starts[i])

    return schedule


def warmup_cosine_decay(peak: float, warmup_steps: float, steps: float, *, start: float = 0.0,
                        final: float = 0.0) -> Schedule:
    """Linear warm-up from ``start`` to ``peak`` over ``warmup_steps``, then a cosine from
    ``peak`` to ``final`` ending at ``steps`` (the total, warm-up included; ``final`` after):
    ``join_schedules([linear_schedule(start, peak, warmup_steps), cosine_decay(peak, steps -
    warmup_steps, final)], [warmup_steps])``.

    >>> s = warmup_cosine_decay(1.0, 10, 30)
    >>> s(0), s(5), s(10), s(20), s(30)
    (0.0, 0.5, 1.0, 0.5, 0.0)
    """
    who = "warmup_cosine_decay"
    warmup_steps = positive(who, "warmup_steps", warmup_steps)
    steps = real(who, "steps", steps, lo=warmup_steps, lo_open=True,
                 expected=f"a number > warmup_steps ({warmup_steps})")
    return join_schedules([linear_schedule(start, peak, warmup_steps),
                           cosine_decay(peak, steps - warmup_steps, final)], [warmup_steps])


def in_epochs(schedule: Callable[[float], float], steps_per_epoch: int, *,
              per_step: bool = True) -> Schedule:
    """Turn a schedule written in epochs into one in update steps:
    ``lr_t = schedule(t / steps_per_epoch)`` (``per_step=False``: ``schedule(t //
    steps_per_epoch)``, the rate changing only at epoch starts, like a PyTorch scheduler
    stepped once per epoch).

    A wrapper rather than a ``steps_per_epoch=`` argument on every constructor: it works the
    same on every schedule, joined ones and your own lambdas included, and the schedule's own
    numbers (warm-up length, decay length, boundaries) read in the unit you think in.
    ``steps_per_epoch`` is ``len(x_train) // batch_size`` with ``drop_last``, else rounded up.

    >>> s = in_epochs(warmup_cosine_decay(1.0, 1, 3), steps_per_epoch=100)
    >>> s(50), s(100), s(200), in_epochs(linear_schedule(0.0, 1.0, 2), 100, per_step=False)(150)
    (0.5, 1.0, 0.5, 0.5)
    """
    if not callable(schedule):
        raise ValueError(f"in_epochs: schedule must be a function epoch -> lr, got {schedule!r}")
    spe = positive_int("in_epochs", "steps_per_epoch", steps_per_epoch)
    if per_step:
        return lambda step: schedule(step / spe)
    return lambda step: schedule(step // spe)


__all__ = ["constant", "cosine_decay", "exponential_decay", "in_epochs", "join_schedules",
           "linear_schedule", "linear_warmup", "piecewise", "step_decay", "warmup_cosine_decay"]
