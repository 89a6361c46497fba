"""Winograd F(2x2, 3x3) (fnn.ops.winograd, compiled backend): the same convolution, kernel
gradient and input gradient as the patch-matrix path, on the layers that take it, and only
on those."""

import numpy as np
import pytest

import fnn
from fnn.ops import conv, winograd
from fnn.ops.geometry import window_geometry as geometry

pytestmark = pytest.mark.skipif(not fnn.ops.available(), reason="numba is not installed")
RNG = np.random.default_rng(0)

# (spatial sizes, pads, C_in, C_out, batch): odd and even sizes, "same", "valid", lopsided pads
CASES = [((14, 14), ((1, 1), (1, 1)), 32, 64, 5), ((13, 11), ((1, 1), (1, 1)), 16, 16, 3),
         ((9, 10), ((0, 0), (0, 0)), 16, 20, 2), ((7, 8), ((2, 0), (1, 2)), 17, 16, 2),
         ((3, 3), ((0, 0), (0, 0)), 16, 16, 1)]


def _patch_path(x, w, g, b, dy, input_grad=True):
    """The convolution and its gradients on the reference (numpy, patch-matrix) path."""
    with fnn.ops.using("numpy"):
        y, saved = conv.correlate(x, w, g, b)
        return y, conv.correlate_vjp(saved, dy, w, g, input_grad)


@pytest.mark.parametrize("sizes,pads,c_in,c_out,n", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_winograd_is_the_convolution_and_its_gradients(sizes, pads, c_in, c_out, n, bias):
    g = geometry(sizes, (3, 3), (1, 1), (1, 1), pads)
    x, w = RNG.standard_normal((n, *sizes, c_in)), RNG.standard_normal((3, 3, c_in, c_out))
    b = RNG.standard_normal(c_out) if bias else None
    dy = RNG.standard_normal((n, *g.out_sizes, c_out))
    y_ref, (dw_ref, db_ref, dx_ref) = _patch_path(x, w, g, b, dy)
    with fnn.ops.using("compiled"):
        y, saved = conv.correlate(x, w, g, b)
        assert isinstance(saved, winograd.Tiles)
        dw, db, dx = conv.correlate_vjp(saved, dy, w, g)
        dw_only, db_only, no_dx = conv.correlate_vjp(saved, dy, w, g, input_grad=False)
    for out, ref in [(y, y_ref), (dw, dw_ref), (dx, dx_ref), (dw_only, dw_ref)]:
        np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-11)
    assert no_dx is None and (db is None) == (not bias)
    if bias:
        np.testing.assert_allclose(db, db_ref, rtol=1e-12)
        np.testing.assert_array_equal(db_only, db)


def test_float32_stays_within_rounding_of_the_direct_convolution():
    """LeNet's second convolution: relative error of a few float32 epsilons."""
    g = geometry((14, 14), (3, 3), (1, 1), (1, 1), "same")
    x = RNG.random((8, 14, 14, 32), dtype=np.float32)
    w = (RNG.standard_normal((3, 3, 32, 64)) / 17).astype(np.float32)
    dy = RNG.standard_normal((8, 14, 14, 64)).astype(np.float32)
    exact = _patch_path(*(a.astype(np.float64) for a in (x, w)), g, None, dy.astype(np.float64))
    with fnn.ops.using("compiled"):
        y, saved = conv.correlate(x, w, g)
        dw, _, dx = conv.correlate_vjp(saved, dy, w, g)
    for out, ref in zip((y, dw, dx), (exact[0], exact[1][0], exact[1][2])):
        assert out.dtype == np.float32
        assert np.abs(out - ref).max() < 1e-6 * np.abs(ref).max() * 8, "beyond float32 rounding"


@pytest.mark.parametrize("layer,shape", [
    (fnn.conv2d(16, 3, padding="same", bias=True), (2, 5, 6, 16)),
    (fnn.conv2d(16, 3, padding=(2, 1)), (2, 4, 5, 16)),
    (fnn.conv_transpose2d(16, 3, padding=1, bias=True), (2, 5, 4, 16)),
], ids=["same", "lopsided", "transpose"])
def test_gradcheck_on_the_winograd_path(layer, shape):
    _, params = layer.init(fnn.key(1), (-1, *shape[1:]))
    with fnn.ops.using("compiled"):
        errors = fnn.gradcheck(layer, params, RNG.standard_normal(shape))
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-6, f"{worst}: {errors[worst]:.2e}"


@pytest.mark.parametrize("layer,shape", [
    (fnn.conv2d(16, 3, padding="same", bias=True), (2, 7, 9, 16)),
    (fnn.conv_transpose2d(16, 3, padding=1), (2, 6, 5, 16)),
], ids=["conv", "transpose"])
def test_layers_agree_with_the_numpy_backend(layer, shape):
    _, params = layer.init(fnn.key(0), (-1, *shape[1:]))
    x = RNG.standard_normal(shape).astype(np.float32)

    def run():
        y, pullback = layer.vjp(params, x)
        return y, pullback(np.cos(y))

    with fnn.ops.using("numpy"):
        ref = run()
    with fnn.ops.using("compiled"):
        out = run()
    for a, b in zip(fnn.tree.tree_leaves(ref), fnn.tree.tree_leaves(out)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize("kernel,stride,dilation,c_in,c_out,dtypes,backend", [
    ((3, 3), (1, 1), (1, 1), 16, 16, (np.float32, np.float32), "compiled"),  # takes it
    ((3, 3), (2, 2), (1, 1), 16, 16, (np.float32, np.float32), "compiled"),
    ((3, 3), (1, 1), (2, 2), 16, 16, (np.float32, np.float32), "compiled"),
    ((5, 5), (1, 1), (1, 1), 16, 16, (np.float32, np.float32), "compiled"),
    ((3, 3), (1, 1), (1, 1), 7, 16, (np.float32, np.float32), "compiled"),
    ((3, 3), (1, 1), (1, 1), 16, 7, (np.float32, np.float32), "compiled"),
    ((3, 3), (1, 1), (1, 1), 8, 8, (np.float32, np.float32), "compiled"),
    ((3, 3), (1, 1), (1, 1), 16, 16, (np.float32, np.float64), "compiled"),
    ((3, 3), (1, 1), (1, 1), 16, 16, (np.float32, np.float32), "numpy"),
])
def test_only_3x3_stride_1_convolutions_on_the_compiled_backend_take_it(
        kernel, stride, dilation, c_in, c_out, dtypes, backend):
    g = geometry((9, 9), kernel, stride, dilation, "same")
    x, w = np.zeros((1, 9, 9, c_in), dtypes[0]), np.zeros((*kernel, c_in, c_out), dtypes[1])
    with fnn.ops.using(backend):
        expected = backend == "compiled" and kernel == (3, 3) and stride == dilation == (1, 1) \
            and min(c_in, c_out) >= 8 and dtypes[0] == dtypes[1]
        assert winograd.fits(g, x, w) == expected
        assert isinstance(conv.correlate(x, w, g)[1], winograd.Tiles) == expected


def test_blocks_of_samples_give_the_numbers_of_one_block(monkeypatch):
    g = geometry((6, 7), (3, 3), (1, 1), (1, 1), "same")
    x, w = RNG.standard_normal((5, 6, 7, 16)), RNG.standard_normal((3, 3, 16, 16))
    dy = RNG.standard_normal((5, 6, 7, 16))
    with fnn.ops.using("compiled"):
        y, saved = conv.correlate(x, w, g)
        one = (y, *conv.correlate_vjp(saved, dy, w, g))
        monkeypatch.setattr(winograd, "BLOCK_BYTES", 1)  # one sample per block
        y, saved = conv.correlate(x, w, g)
        assert len(saved.blocks) == 5
        blocked = (y, *conv.correlate_vjp(saved, dy, w, g))
    for a, b in zip(one, blocked):
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-13)


def test_transform_kernel_and_its_adjoint():
    w, du = RNG.standard_normal((3, 3, 2, 3)), RNG.standard_normal((16, 2, 3))
    assert np.isclose(np.sum(winograd.transform_kernel(w) * du),
                      np.sum(w * winograd.kernel_adjoint(du)))
    # the transformed kernel's corners are the kernel's corners
    u = winograd.transform_kernel(w).reshape(4, 4, 2, 3)
    np.testing.assert_array_equal(u[0, 0], w[0, 0])
    np.testing.assert_array_equal(u[3, 3], w[2, 2])


def test_compiled_transforms_are_the_matrices():
    """Each compiled tile transform is its matrix product (B^T d B, A^T m A, and their
    adjoints A dy A^T, B dv B^T) on every tile; the kernel transform is G w G^T."""
    from fnn.ops import compiled

    bt, at, g = winograd.B_T, winograd.A_T, winograd.G
    n, th, tw, c = 2, 3, 2, 5
    xp = RNG.standard_normal((n, 2 * th + 2, 2 * tw + 2, c))
    v = np.empty((n * th * tw, 16, c))
    compiled.winograd_input(xp, th, tw, v)
    m = RNG.standard_normal((n * th * tw, 16, c))
    y = np.empty((n, 2 * th, 2 * tw, c))
    compiled.winograd_output(m, np.zeros(c), th, tw, y)
    dy = RNG.standard_normal(y.shape)
    dm = np.empty(m.shape)
    compiled.winograd_output_grad(dy, th, tw, dm)
    for b, i, j in np.ndindex(n, th, tw):
        t = (b * th + i) * tw + j
        d = xp[b, 2 * i:2 * i + 4, 2 * j:2 * j + 4]  # (4, 4, c)
        np.testing.assert_allclose(v[t].reshape(4, 4, c), np.einsum("ai,ijc,bj->abc", bt, d, bt))
        block = np.einsum("ia,abc,jb->ijc", at, m[t].reshape(4, 4, c), at)
        np.testing.assert_allclose(y[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2], block)
        grad = np.einsum("ai,ijc,bj->abc", at.T, dy[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2], at.T)
        np.testing.assert_allclose(dm[t].reshape(4, 4, c), grad)
    dx = np.empty((n, 2 * th, 2 * tw, c))
    buf = np.empty((n, 2 * th + 2, 2 * tw + 2, c))
    compiled.winograd_input_grad(v, th, tw, 1, 1, buf, dx)
    full = np.zeros(buf.shape)
    for b, i, j in np.ndindex(n, th, tw):
        vt = v[(b * th + i) * tw + j].reshape(4, 4, c)
        full[b, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("ai,abc,bj->ijc", bt, vt, bt)
    np.testing.assert_allclose(dx, full[:, 1:1 + 2 * th, 1:1 + 2 * tw])
    w = RNG.standard_normal((3, 3, 2, 3))
    np.testing.assert_allclose(winograd.transform_kernel(w).reshape(4, 4, 2, 3),
                               np.einsum("ak,klio,bl->abio", g, w, g))
