"""The kernel choices behind fnn's conv, pool and relu code, each timed against the plain numpy
way on the shapes of the LeNet and autoencoder benchmarks (batch 64, float32); then (with
numba installed) each compiled kernel against the numpy one it replaces. Prints the median of
each and the speed-up; nothing is written.

    OPENBLAS_NUM_THREADS=1 python benchmarks/micro.py [--repeats 50]
"""

from __future__ import annotations

import statistics

import numpy as np
from harness import repeats_arg, timings
from numpy.lib.stride_tricks import sliding_window_view

import fnn
from fnn.ops import activations, update
from fnn.ops.conv import (
    adjoint_by_taps,
    bias_grad,
    correlate,
    correlate_adjoint,
    correlate_by_patches,
    correlate_vjp,
    kernel_grad,
    kernel_matrix,
    patches,
)
from fnn.ops.dense import input_grad as dense_input_grad
from fnn.ops.geometry import window_geometry as ops_geometry
from fnn.ops.pool import max_and_argmax, max_pool, max_pool_backward
from fnn.ops.windows import fold, fold_taps, pad, window_view

RNG = np.random.default_rng(0)


def same3x3(size: int):
    return ops_geometry((size, size), (3, 3), (1, 1), (1, 1), "same")


def data(*shape):
    return RNG.standard_normal(shape, dtype=np.float32)


def sliding_windows(xp, g):
    """The sliding_window_view route to :func:`fnn.ops.windows.window_view`."""
    nd = len(g.kernel)
    view = sliding_window_view(xp, g.effective_kernel, axis=tuple(range(1, nd + 1)))
    view = view[(slice(None), *(slice(None, s * (o - 1) + 1, s) for s, o in zip(g.stride, g.out_sizes)),
                 slice(None), *(slice(None, None, d) for d in g.dilation))]
    return np.moveaxis(view, nd + 1, -1)


def argmax_pool(x):
    """2x2 max-pool and arg-max by ``argmax`` + ``take_along_axis`` on the copied windows."""
    n, h, w, c = x.shape
    win = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
    win = win.reshape(n, h // 2, w // 2, c, 4)
    arg = win.argmax(axis=-1)
    return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0], arg


def cases():
    """``(claim, fnn's way, the alternative)``: zero-argument callables."""
    x1, g28 = data(64, 28, 28, 1), same3x3(28)
    x32, g14 = data(64, 14, 14, 32), same3x3(14)
    cols32 = patches(x32, g14, ones=True)
    rows64 = data(64 * 14 * 14, 64)
    dy64, w3264, b64 = data(64, 14, 14, 64), data(3, 3, 32, 64), data(64)
    dy8, w168 = data(64, 14, 14, 8), data(3, 3, 16, 8)
    dy1, w161 = data(64, 28, 28, 1), data(3, 3, 16, 1)
    y16 = data(64, 28, 28, 16)
    relu_x, relu_dy = data(64, 28, 28, 32), data(64, 28, 28, 32)
    pool_x = data(64, 28, 28, 32)
    g_pool = ops_geometry((28, 28), (2, 2), (2, 2), (1, 1), ((0, 0), (0, 0)))
    small = data(2, 6, 6, 4)
    dy_dense, w_dense = data(32, 100), data(4064, 100)
    g_small = same3x3(6)
    per_tap = lambda dy, w: np.matmul(dy.reshape(-1, w.shape[-1]),  # noqa: E731
                                      w.reshape(-1, *w.shape[-2:]).transpose(0, 2, 1))
    return [
        ("patches of 1 channel, tap by tap (28x28x1, 3x3)",
         lambda: patches(x1, g28), lambda: window_view(pad(x1, g28.pads), g28).reshape(-1, 9)),
        ("kernel grad in the patches' layout (14x14, 32 -> 64)",
         lambda: kernel_grad(cols32, rows64, (3, 3, 32, 64)), lambda: cols32.T @ rows64),
        ("bias grad as matrix-vector product (28x28x16)",
         lambda: bias_grad(y16), lambda: y16.reshape(-1, 16).sum(axis=0)),
        ("conv forward on L2-sized blocks of patches (14x14, 32 -> 64)",
         lambda: correlate_by_patches(x32, w3264, g14, b64),
         lambda: patches(x32, g14, ones=True) @ kernel_matrix(w3264, b64)),
        ("numpy: input grad, per-tap matmuls added in place (14x14, 32 -> 64)",
         on("numpy", adjoint_by_taps, dy64, w3264, g14),
         lambda: fold_taps(per_tap(dy64, w3264).reshape(3, 3, 64, 14, 14, 32), g14)),
        ("  ... against one wide matmul then numpy's fold",
         on("numpy", adjoint_by_taps, dy64, w3264, g14),
         on("numpy", lambda: fold((dy64.reshape(-1, 64) @ kernel_matrix(w3264).T)
                                  .reshape(64, 14, 14, 3, 3, 32), g14))),
        ("numpy: input grad as flipped convolution (14x14, 16 -> 8)",
         on("numpy", correlate_adjoint, dy8, w168, g14), on("numpy", adjoint_by_taps, dy8, w168, g14)),
        ("input grad as flipped convolution (28x28, 16 -> 1)",
         lambda: correlate_adjoint(dy1, w161, g28), lambda: adjoint_by_taps(dy1, w161, g28)),
        ("2x2 max-pool over tap views (28x28x32)",
         lambda: max_and_argmax(pool_x, g_pool), lambda: argmax_pool(pool_x)),
        ("relu backward with a float mask (28x28x32)",
         lambda: relu_dy * (relu_x > 0).astype(relu_x.dtype), lambda: relu_dy * (relu_x > 0)),
        ("dense input grad as (w @ dy.T).T, C order (the Conv1D net's 4064 -> 100, batch 32)",
         lambda: dense_input_grad(dy_dense, w_dense), lambda: dy_dense @ w_dense.T),
        ("pad by border slabs (tiny input: Python time)",
         lambda: pad(small, g_small.pads), lambda: np.pad(small, ((0, 0), *g_small.pads, (0, 0)))),
        ("windows by one as_strided (tiny input: Python time)",
         lambda: window_view(small, g_small), lambda: sliding_windows(small, g_small)),
    ]


def on(backend, fn, *args):
    """``fn(*args)`` on a kernel backend, as a zero-argument callable."""
    def run():
        with fnn.ops.using(backend):
            return fn(*args)

    return run


def compiled_cases():
    """``(claim, compiled, numpy)``: each compiled kernel against the numpy one (empty
    without numba)."""
    if not fnn.ops.available():
        return []
    x, g_pool = data(64, 28, 28, 32), ops_geometry((28, 28), (2, 2), (2, 2), (1, 1), ((0, 0),) * 2)
    y, arg = max_pool(x, g_pool, True)
    dy = data(*y.shape)
    g28 = same3x3(28)
    dwin = data(64, 28, 28, 3, 3, 4)
    dy64, w3264, g14 = data(64, 14, 14, 64), data(3, 3, 32, 64), same3x3(14)
    strided_dy = data(64, 16, 16, 32)[:, 1:15, 1:15]  # a cropped conv input gradient
    g_up = ops_geometry((14, 14), (3, 3), (2, 2), (1, 1), ((1, 1), (1, 1)))  # the AE's decoder
    dy8, w168 = data(64, 7, 7, 8), data(3, 3, 16, 8)
    g14_pool = ops_geometry((28, 28), (2, 2), (2, 2), (1, 1), ((0, 0),) * 2)
    both = lambda fn, *a: (on("compiled", fn, *a), on("numpy", fn, *a))  # noqa: E731
    x32, x16 = data(64, 14, 14, 32), data(64, 14, 14, 16)
    w_big = data(4064, 100)
    w_mlp = data(256, 100)
    w168_same, dy14_8 = data(3, 3, 16, 8), data(64, 14, 14, 8)

    def conv_step(correlate_fn, x, w, dy):  # forward, then dw, db and dx
        return lambda: correlate_vjp(correlate_fn(x, w, g14, w[0, 0, 0])[1], dy, w, g14)
    from fnn.ops import compiled  # numba is installed here

    def general_pool():  # the kernel for any window, which the 2x2 one replaces
        out, where = np.empty(y.shape, y.dtype), np.empty(arg.shape, arg.dtype)
        compiled._max_pool2d(x, 2, 2, 2, 2, 0, 0, True, out, where)
        return out, where

    def strided_backward():  # the kernel fed the strided view, as before the copy to C order
        dx = np.empty(x.shape, x.dtype)
        compiled._max_pool2d_backward(strided_dy, arg, y, True, 2, 2, 2, 2, 0, 0, True, dx)
        return dx

    return [
        ("compiled: relu + 2x2 max-pool forward, fused (28x28x32)", *both(max_pool, x, g_pool, True)),
        ("compiled: 2x2 max-pool kernel against the kernel for any window",
         on("compiled", max_pool, x, g_pool, True), general_pool),
        ("compiled: relu + 2x2 max-pool backward, fused (28x28x32)",
         *both(max_pool_backward, dy, arg, g_pool, y)),
        ("compiled: max-pool backward, a strided dy copied to C order first",
         on("compiled", max_pool_backward, strided_dy, arg, g14_pool, y), strided_backward),
        ("compiled: input grad on 2-D, wide matmul + fold (14x14 <- 7x7, 16 <- 8, stride 2)",
         on("compiled", adjoint_by_taps, dy8, w168, g_up), on("numpy", adjoint_by_taps, dy8, w168, g_up)),
        ("  ... the same on LeNet's second conv (14x14, 32 <- 64)",
         on("compiled", adjoint_by_taps, dy64, w3264, g14),
         on("numpy", adjoint_by_taps, dy64, w3264, g14)),
        ("compiled: Winograd F(2x2,3x3) conv, forward + backward, against the patch matrix "
         "(LeNet's second conv, 14x14, 32 -> 64)",
         on("compiled", conv_step(correlate, x32, w3264, dy64)),
         on("compiled", conv_step(correlate_by_patches, x32, w3264, dy64))),
        ("  ... the same on the autoencoder's second conv (14x14, 16 -> 8)",
         on("compiled", conv_step(correlate, x16, w168_same, dy14_8)),
         on("compiled", conv_step(correlate_by_patches, x16, w168_same, dy14_8))),
        ("compiled: fold 3x3 windows (28x28x4)", *both(fold, dwin, g28)),
        ("compiled: p + a * u in one pass (a 4064x100 kernel's SGD update)",
         *both(update.add_scaled, w_big, w_big, -0.05)),
        ("  ... the same on the MLP's 256x100 kernel",
         *both(update.add_scaled, w_mlp, w_mlp, -0.05)),
        ("compiled: relu vjp (28x28x32)", *both(activations.relu_vjp, x, x, x)),
        ("compiled: tanh vjp (28x28x32)", *both(activations.tanh_vjp, x, x, x)),
        ("compiled: sigmoid vjp (28x28x32)", *both(activations.sigmoid_vjp, x, x, x)),
        ("numpy: relu fused into the max-pool, against relu then pool (28x28x32)",
         on("numpy", max_pool, x, g_pool, True),
         on("numpy", lambda: max_pool(np.maximum(x, 0.0), g_pool))),
    ]


def main(argv=None) -> list[tuple[str, float, float]]:
    repeats = repeats_arg(__doc__, argv, default=50)
    rows = []
    print(f"{'choice':66s} {'fnn':>10s} {'plain':>10s} {'speed-up':>8s}")
    for claim, ours, theirs in cases() + compiled_cases():
        t_ours, t_theirs = (statistics.median(timings(fn, repeats)) for fn in (ours, theirs))
        rows.append((claim, t_ours, t_theirs))
        print(f"{claim:66s} {t_ours * 1e6:8.0f}µs {t_theirs * 1e6:8.0f}µs {t_theirs / t_ours:7.1f}x",
              flush=True)
    return rows


if __name__ == "__main__":
    main()
