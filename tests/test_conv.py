"""Convolution, pooling, up-sampling: gradients (float64 finite differences), adjointness,
output-size formulas, agreement with PyTorch (when installed) and bad inputs; every test runs
on both kernel backends (numpy and compiled, see ``fnn.ops``)."""

import itertools

import numpy as np
import pytest

import fnn
from fnn.layers.arguments import geometry

RNG = np.random.default_rng(0)
TOL = 1e-6


@pytest.fixture(autouse=True)
def _every_backend(backend):
    """Each test below runs on the numpy and on the compiled kernels."""


def _gradcheck(layer, input_shape, x=None):
    out_shape, params = layer.init(fnn.key(1), input_shape)
    if x is None:
        x = RNG.standard_normal((2, *input_shape[1:]))
    errors = fnn.gradcheck(layer, params, x)
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOL, f"{layer.name} {input_shape}: {worst} rel. error {errors[worst]:.2e}"
    y = layer.apply(fnn.tree.tree_map(lambda a: a.astype(np.float64), params), x)
    assert y.shape[1:] == tuple(out_shape[1:]), (y.shape, out_shape)
    return params, y


# --- gradients over a grid of sizes, strides, paddings, dilations --------------------------------

CONV1D_GRID = [  # (L, k, stride, padding, dilation)
    *itertools.product([7, 8], [1, 2, 3], [1, 2], ["valid", "same", 1, (0, 2)], [1, 2]),
]


@pytest.mark.parametrize("length,k,stride,padding,dilation", CONV1D_GRID)
def test_conv1d_gradients(length, k, stride, padding, dilation):
    layer = fnn.conv1d(3, k, stride=stride, padding=padding, dilation=dilation, bias=True)
    _gradcheck(layer, (-1, length, 2))


CONV2D_GRID = [  # ((H, W), k, stride, padding, dilation)
    ((5, 6), 3, 1, "valid", 1), ((5, 6), 3, 1, "same", 1), ((6, 7), (2, 3), (2, 1), "same", 1),
    ((7, 6), 3, 2, 1, 1), ((8, 8), 3, 1, ((0, 1), (2, 0)), 2), ((5, 5), 2, 2, "valid", 1),
    ((6, 5), (1, 2), 1, (1, 0), (1, 2)), ((9, 8), 3, 3, "valid", 1),
]


@pytest.mark.parametrize("hw,k,stride,padding,dilation", CONV2D_GRID)
def test_conv2d_gradients(hw, k, stride, padding, dilation):
    layer = fnn.conv2d(4, k, stride=stride, padding=padding, dilation=dilation, bias=True)
    _gradcheck(layer, (-1, *hw, 3))


TRANSPOSE_GRID = [  # (size, k, stride, padding, output_padding, dilation)
    (4, 3, 1, 0, 0, 1), (5, 3, 2, 1, 1, 1), (4, 2, 2, 0, 0, 1), (6, 3, 2, 0, 1, 2),
    (3, 4, 3, (1, 2), 2, 1),
]


@pytest.mark.parametrize("size,k,stride,padding,out_pad,dilation", TRANSPOSE_GRID)
def test_conv_transpose_gradients(size, k, stride, padding, out_pad, dilation):
    kw = dict(stride=stride, padding=padding, output_padding=out_pad, dilation=dilation, bias=True)
    _gradcheck(fnn.conv_transpose1d(3, k, **kw), (-1, size, 2))
    pad2 = padding if isinstance(padding, int) else (padding, padding)
    kw2 = dict(kw, padding=pad2)
    _gradcheck(fnn.conv_transpose2d(3, k, **kw2), (-1, size, size + 1, 2))


@pytest.mark.parametrize("nd,k,stride,padding,dilation", [
    (1, 3, 1, "same", 1), (1, 3, 2, 1, 2), (2, 3, 1, "same", 1), (2, (2, 3), (2, 1), 0, 1),
])
def test_wide_input_gradients(nd, k, stride, padding, dilation):
    """8+ input channels take the tap-major batched matmul in the input gradient (and in the
    transposed convolution's forward pass)."""
    kw = dict(stride=stride, padding=padding, dilation=dilation, bias=True)
    _gradcheck([fnn.conv1d, fnn.conv2d][nd - 1](3, k, **kw), (-1, *(6,) * nd, 8))
    kw.pop("padding")
    _gradcheck([fnn.conv_transpose1d, fnn.conv_transpose2d][nd - 1](8, k, **kw), (-1, *(4,) * nd, 2))


@pytest.mark.parametrize("layer, shape", [
    (fnn.conv2d(5, 3, padding="same", bias=True), (7, 6, 6, 3)),
    (fnn.conv2d(4, 3, stride=2, padding=1), (5, 7, 7, 9)),
    (fnn.conv_transpose2d(3, 3, stride=2, padding=1, output_padding=1, bias=True), (6, 4, 4, 9)),
    (fnn.conv1d(4, 3, bias=True), (5, 9, 2)),
])
def test_forward_blocks_give_the_same_numbers(layer, shape, monkeypatch):
    """The forward matmul runs on blocks of samples (``fnn.ops.conv.BLOCK_BYTES``): one sample
    per block gives the numbers of one block for the whole batch."""
    _, params = layer.init(fnn.key(0), (-1, *shape[1:]))
    x = RNG.standard_normal(shape)

    def run():
        y, back = layer.vjp(params, x)
        return y, *back(np.ones_like(y))

    y, grads, dx = run()
    monkeypatch.setattr(fnn.ops.conv, "BLOCK_BYTES", 1)
    g = geometry("test", shape[1:-1], (3,) * (len(shape) - 2), (1,) * (len(shape) - 2),
                 (1,) * (len(shape) - 2), "same")
    assert len(fnn.ops.conv.sample_blocks(shape[0], g, 8)) == shape[0]
    y1, grads1, dx1 = run()
    np.testing.assert_allclose(y1, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx1, dx, rtol=1e-12, atol=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads1[k], grads[k], rtol=1e-12, atol=1e-12)


POOLS = [
    (fnn.max_pool1d, (-1, 9, 3), [(2, None, 0), (3, 2, 1), (2, 1, 0), (3, 3, (0, 2))]),
    (fnn.avg_pool1d, (-1, 9, 3), [(2, None, 0), (3, 2, 1), (2, 1, 0), (4, 3, (1, 2))]),
    (fnn.max_pool2d, (-1, 7, 6, 2), [(2, None, 0), (3, 2, 1), ((2, 3), (1, 2), 0)]),
    (fnn.avg_pool2d, (-1, 7, 6, 2), [(2, None, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 0))]),
]


@pytest.mark.parametrize("make,shape,args", [(m, s, a) for m, s, grid in POOLS for a in grid],
                         ids=lambda v: getattr(v, "__name__", None))
def test_pool_gradients(make, shape, args):
    x = RNG.permutation(np.prod((2, *shape[1:]))).reshape(2, *shape[1:]) * 0.1  # no ties
    _gradcheck(make(*args), shape, x.astype(np.float64))


@pytest.mark.parametrize("layer,shape", [
    (fnn.upsample1d(3), (-1, 4, 2)), (fnn.upsample2d(2), (-1, 3, 4, 2)),
    (fnn.upsample2d((1, 3)), (-1, 3, 2, 2)), (fnn.global_avg_pool(), (-1, 5, 4, 3)),
    (fnn.global_avg_pool(), (-1, 6, 2)),
])
def test_upsample_and_global_pool_gradients(layer, shape):
    _gradcheck(layer, shape)


def test_max_pool_ties_route_the_gradient_to_the_first_maximum():
    layer = fnn.max_pool1d(3)
    x = np.array([[[1.0], [5.0], [5.0], [2.0], [2.0], [2.0]]])
    y, pullback = layer.vjp({}, x)
    _, dx = pullback(np.ones_like(y))
    np.testing.assert_array_equal(dx.ravel(), [0, 1, 0, 1, 0, 0])


def test_conv_net_gradient_through_serial():
    model = fnn.serial(fnn.conv2d(4, 3, padding="same", bias=True), fnn.relu(), fnn.max_pool2d(2),
                       fnn.conv_transpose2d(2, 2, stride=2), fnn.tanh(), fnn.flatten(),
                       fnn.linear(3))
    _gradcheck(model, (-1, 6, 6, 1), RNG.standard_normal((2, 6, 6, 1)) + 0.01)


# --- adjointness: <conv(x), y> == <x, conv_T(y)> ---------------------------------------------------

@pytest.mark.parametrize("nd,size,k,stride,padding,out_pad,dilation", [
    (1, 9, 3, 2, 1, 0, 1), (1, 10, 3, 2, 1, 1, 1), (1, 11, 4, 3, (2, 0), 2, 2),
    (2, 7, 3, 2, 1, 0, 1), (2, 8, 3, 2, 1, 1, 1), (2, 9, (2, 3), (2, 3), 0, (1, 2), 1),
])
def test_conv_transpose_is_the_adjoint_of_conv(nd, size, k, stride, padding, out_pad, dilation):
    conv = [fnn.conv1d, fnn.conv2d][nd - 1]
    conv_t = [fnn.conv_transpose1d, fnn.conv_transpose2d][nd - 1]
    in_shape = (-1, *(size,) * nd, 3)
    out_shape, params = conv(5, k, stride=stride, padding=padding, dilation=dilation).init(
        fnn.key(0), in_shape)
    layer_t = conv_t(3, k, stride=stride, padding=padding, output_padding=out_pad,
                     dilation=dilation)
    back_shape, _ = layer_t.init(fnn.key(0), out_shape)
    x = RNG.standard_normal((2, *back_shape[1:]))
    y = RNG.standard_normal((2, *out_shape[1:]))
    w = params["w"].astype(np.float64)  # (k, 3, 5): conv 3->5, its transpose 5->3
    lhs = np.sum(conv(5, k, stride=stride, padding=padding, dilation=dilation).apply({"w": w}, x) * y)
    rhs = np.sum(x * layer_t.apply({"w": w}, y))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_transpose_mirrors_a_strided_encoder():
    for size in (7, 8):
        enc = fnn.conv2d(8, 3, stride=2, padding=1)
        mid, _ = enc.init(fnn.key(0), (-1, size, size, 1))
        dec = fnn.conv_transpose2d(1, 3, stride=2, padding=1, output_padding=1 - size % 2)
        assert dec.init(fnn.key(0), mid)[0] == (-1, size, size, 1)


# --- output-size formulas ---------------------------------------------------------------------------

@pytest.mark.parametrize("length,k,s,pad,d", list(itertools.product([1, 5, 16], [1, 2, 3, 5], [1, 2, 3],
                                                              [0, 1, 2], [1, 2])))
def test_output_size_formula(length, k, s, pad, d):
    eff = d * (k - 1) + 1
    if length + 2 * pad < eff:
        with pytest.raises(fnn.LayerError, match="does not fit"):
            fnn.conv1d(2, k, stride=s, padding=pad, dilation=d).init(fnn.key(0), (-1, length, 1))
        return
    expected = (length + 2 * pad - eff) // s + 1
    shape, params = fnn.conv1d(2, k, stride=s, padding=pad, dilation=d).init(
        fnn.key(0), (-1, length, 1))
    assert shape == (-1, expected, 2)
    y = fnn.conv1d(2, k, stride=s, padding=pad, dilation=d).apply(
        params, np.zeros((1, length, 1), np.float32))
    assert y.shape == (1, expected, 2)
    same = geometry("t", (length,), (k,), (s,), (d,), "same")
    assert same.out_sizes == (-(-length // s),)
    back = (expected - 1) * s - 2 * pad + eff  # ≤ length: the floor's remainder is lost
    layer_t = fnn.conv_transpose1d(1, k, stride=s, padding=pad, dilation=d)
    if back <= 0:
        with pytest.raises(fnn.LayerError, match="too large"):
            layer_t.init(fnn.key(0), (-1, expected, 2))
    else:
        assert layer_t.init(fnn.key(0), (-1, expected, 2))[0] == (-1, back, 1)


# --- against PyTorch ---------------------------------------------------------------------------------

@pytest.mark.parametrize("nd,k,padding,dilation", [
    (1, 3, "same", 1), (1, 3, "valid", 2), (1, 2, (0, 1), 1), (1, 3, (3, 0), 1),
    (2, 3, "same", 1), (2, (2, 3), ((1, 0), (0, 2)), (2, 1)), (2, 3, 3, 1),
])
def test_fewer_output_channels_at_stride_one(nd, k, padding, dilation):
    """C_out <= C_in at stride 1: the input gradient is the flipped-kernel convolution (except
    where the padding is as wide as the kernel: (3, 0) and 3 fold back instead)."""
    layer = [fnn.conv1d, fnn.conv2d][nd - 1](2, k, padding=padding, dilation=dilation, bias=True)
    _gradcheck(layer, (-1, *(6,) * nd, 5))
    kw = dict(dilation=dilation, padding=0 if isinstance(padding, str) else padding)
    _gradcheck([fnn.conv_transpose1d, fnn.conv_transpose2d][nd - 1](5, k, **kw), (-1, *(6,) * nd, 2))


@pytest.mark.parametrize("nd", [1, 2])
def test_single_channel_inputs(nd):
    """One input channel: patches are copied tap by tap; the bias rides in the matmul."""
    conv = [fnn.conv1d, fnn.conv2d][nd - 1]
    for stride, padding in [(1, "same"), (2, "valid"), (2, 1)]:
        params, y = _gradcheck(conv(3, 3, stride=stride, padding=padding, bias=True),
                               (-1, *(7,) * nd, 1))
        params = {"w": params["w"].astype(np.float64), "b": np.array([0.5, -1.0, 2.0])}
        x = RNG.standard_normal((2, *(7,) * nd, 1))
        without_bias = conv(3, 3, stride=stride, padding=padding).apply({"w": params["w"]}, x)
        np.testing.assert_allclose(conv(3, 3, stride=stride, padding=padding, bias=True)
                                   .apply(params, x), without_bias + params["b"], rtol=1e-12)
    _gradcheck([fnn.conv_transpose1d, fnn.conv_transpose2d][nd - 1](1, 3, stride=2, bias=True),
               (-1, *(4,) * nd, 3))


def test_patches_with_a_column_of_ones_hold_the_same_windows():
    from fnn.ops.conv import patches
    for channels in (1, 3):
        x = RNG.standard_normal((2, 6, 5, channels))
        g = geometry("t", (6, 5), (3, 2), (1, 2), (1, 1), "same")
        plain, with_ones = patches(x, g), patches(x, g, ones=True)
        np.testing.assert_array_equal(with_ones[:, :-1], plain)
        np.testing.assert_array_equal(with_ones[:, -1], 1.0)


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("nd,k,stride,padding,dilation", [
    (1, 3, 1, "valid", 1), (1, 5, 2, 2, 1), (1, 3, 1, "same", 2),
    (2, 3, 1, "same", 1), (2, (3, 2), (2, 1), (1, 0), 1), (2, 3, 1, 2, 2),
])
def test_conv_matches_torch(nd, k, stride, padding, dilation):
    torch = _torch()
    F = torch.nn.functional
    conv = [fnn.conv1d, fnn.conv2d][nd - 1]
    layer = conv(6, k, stride=stride, padding=padding, dilation=dilation, bias=True)
    shape = (-1, *(11,) * nd, 4)
    _, params = layer.init(fnn.key(0), shape)
    params["b"] = RNG.standard_normal(6).astype(np.float32)
    x = RNG.standard_normal((3, *shape[1:])).astype(np.float32)
    y, pullback = layer.vjp(params, x)
    dy = RNG.standard_normal(y.shape).astype(np.float32)
    grads, dx = pullback(dy)

    perm_x = (0, nd + 1, *range(1, nd + 1))  # channels-last -> channels-first
    perm_w = (nd + 1, nd, *range(nd))        # (*k, C_in, C_out) -> (C_out, C_in, *k)
    tx = torch.tensor(x.transpose(perm_x), requires_grad=True)
    tw = torch.tensor(params["w"].transpose(perm_w), requires_grad=True)
    tb = torch.tensor(params["b"], requires_grad=True)
    tpad = padding if isinstance(padding, (str, int)) else tuple(padding)
    ty = [F.conv1d, F.conv2d][nd - 1](tx, tw, tb, stride=stride, padding=tpad, dilation=dilation)
    ty.backward(torch.tensor(dy.transpose(perm_x)))
    np.testing.assert_allclose(y, ty.detach().numpy().transpose(np.argsort(perm_x)), atol=1e-4)
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(np.argsort(perm_x)), atol=1e-4)
    np.testing.assert_allclose(grads["w"], tw.grad.numpy().transpose(np.argsort(perm_w)),
                               atol=1e-4)
    np.testing.assert_allclose(grads["b"], tb.grad.numpy(), atol=1e-4)


@pytest.mark.parametrize("nd,k,stride,padding,out_pad,dilation", [
    (1, 3, 2, 1, 1, 1), (1, 4, 3, 0, 2, 2), (2, 3, 2, 1, 1, 1), (2, (2, 3), (2, 1), (0, 1), (1, 0), 1),
])
def test_conv_transpose_matches_torch(nd, k, stride, padding, out_pad, dilation):
    torch = _torch()
    F = torch.nn.functional
    conv_t = [fnn.conv_transpose1d, fnn.conv_transpose2d][nd - 1]
    layer = conv_t(5, k, stride=stride, padding=padding, output_padding=out_pad,
                   dilation=dilation)
    shape = (-1, *(6,) * nd, 3)
    _, params = layer.init(fnn.key(0), shape)
    x = RNG.standard_normal((2, *shape[1:])).astype(np.float32)
    y = layer.apply(params, x)
    perm_x = (0, nd + 1, *range(1, nd + 1))
    perm_w = (nd + 1, nd, *range(nd))  # (*k, C_out, C_in) -> torch (C_in, C_out, *k)
    ty = [F.conv_transpose1d, F.conv_transpose2d][nd - 1](
        torch.tensor(x.transpose(perm_x)), torch.tensor(params["w"].transpose(perm_w)),
        stride=stride, padding=padding, output_padding=out_pad, dilation=dilation)
    np.testing.assert_allclose(y, ty.numpy().transpose(np.argsort(perm_x)), atol=1e-4)


@pytest.mark.parametrize("kind,nd,k,stride,padding", [
    ("max", 1, 2, None, 0), ("max", 1, 3, 2, 1), ("avg", 1, 3, 2, 1),
    ("max", 2, 2, None, 0), ("max", 2, 3, 2, 1), ("avg", 2, (3, 2), (2, 1), (1, 0)),
])
def test_pool_matches_torch(kind, nd, k, stride, padding):
    torch = _torch()
    F = torch.nn.functional
    layer = getattr(fnn, f"{kind}_pool{nd}d")(k, stride, padding)
    x = RNG.standard_normal((2, *(9,) * nd, 3)).astype(np.float32)
    y, pullback = layer.vjp({}, x)
    dy = RNG.standard_normal(y.shape).astype(np.float32)
    _, dx = pullback(dy)
    perm = (0, nd + 1, *range(1, nd + 1))
    tx = torch.tensor(x.transpose(perm), requires_grad=True)
    ty = getattr(F, f"{kind}_pool{nd}d")(tx, k, stride, padding)
    ty.backward(torch.tensor(dy.transpose(perm)))
    np.testing.assert_allclose(y, ty.detach().numpy().transpose(np.argsort(perm)), atol=1e-5)
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(np.argsort(perm)), atol=1e-5)


# --- dtypes and bad inputs -------------------------------------------------------------------------

def test_float32_in_float32_out():
    model = fnn.serial(fnn.conv1d(4, 3, bias=True), fnn.max_pool1d(2), fnn.upsample1d(2),
                       fnn.conv_transpose1d(2, 3), fnn.global_avg_pool())
    _, params = model.init(fnn.key(0), (-1, 12, 1))
    x = np.ones((2, 12, 1), np.float32)
    y, pullback = model.vjp(params, x)
    grads, dx = pullback(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in fnn.tree.tree_leaves(grads))


def test_kernel_that_does_not_fit_names_the_layer_and_sizes():
    with pytest.raises(fnn.LayerError, match=r"conv2d\(8, 5\).*does not fit.*spatial size 4"):
        fnn.conv2d(8, 5).init(fnn.key(0), (-1, 4, 4, 1))
    model = fnn.serial(fnn.conv1d(4, 3), fnn.max_pool1d(2), fnn.conv1d(4, 3))
    with pytest.raises(fnn.LayerError, match=r"\[02_conv1d\].*does not fit"):
        model.init(fnn.key(0), (-1, 6, 1))
    _, params = fnn.conv1d(4, 5).init(fnn.key(0), (-1, 16, 1))
    with pytest.raises(fnn.LayerError, match="does not fit"):
        fnn.conv1d(4, 5).apply(params, np.zeros((1, 3, 1), np.float32))


def test_wrong_rank_and_channels_are_clear():
    layer = fnn.conv2d(8, 3)
    with pytest.raises(fnn.LayerError, match=r"conv2d\(8, 3\): expects inputs of shape \(N, H, W, C\)"):
        layer.init(fnn.key(0), (-1, 28, 28))
    _, params = layer.init(fnn.key(0), (-1, 8, 8, 3))
    with pytest.raises(fnn.LayerError, match=r"expects inputs of shape \(N, H, W, C\), got input_shape \(N, 8, 8\)"):
        layer.apply(params, np.zeros((2, 8, 8), np.float32))
    with pytest.raises(fnn.LayerError, match=r"input \(2, 8, 8, 1\) does not fit params\['w'\] of shape \(3, 3, 3, 8\) \(an input \(N, 8, 8, 1\) needs \(3, 3, 1, 8\)\)"):
        layer.apply(params, np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(fnn.LayerError, match="floating-point"):
        layer.apply(params, np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(fnn.LayerError, match=r"max_pool1d\(2\): expected input of shape \(N, L, C\)"):
        fnn.max_pool1d(2).apply({}, np.zeros((2, 8), np.float32))


@pytest.mark.parametrize("make,match", [
    (lambda: fnn.conv1d(0, 3), "out_channels"),
    (lambda: fnn.conv1d(4, 0), "kernel_size"),
    (lambda: fnn.conv2d(4, (3, 3, 3)), "kernel_size"),
    (lambda: fnn.conv1d(4, 3, padding="full"), "padding"),
    (lambda: fnn.conv1d(4, 3, padding=-1), "padding"),
    (lambda: fnn.conv1d(4, 3, stride=0), "stride"),
    (lambda: fnn.conv_transpose1d(4, 3, padding="same"), "padding"),
    (lambda: fnn.conv_transpose1d(4, 3, stride=2, output_padding=2), "output_padding"),
    (lambda: fnn.upsample2d(2, mode="bilinear"), "mode"),
])
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_pool_padding_larger_than_kernel_is_refused():
    with pytest.raises(fnn.LayerError, match="padding"):
        fnn.max_pool1d(2, padding=2).init(fnn.key(0), (-1, 8, 1))


@pytest.mark.parametrize("sizes,kernel,stride,dilation,padding", [
    ((9,), (3,), (2,), (1,), ((1, 1),)), ((7,), (2,), (1,), (3,), "same"),
    ((9, 8), (3, 2), (2, 1), (1, 2), ((1, 1), (0, 2))), ((6, 6), (2, 2), (2, 2), (1, 1), "same"),
])
def test_windows_match_sliding_window_view(sizes, kernel, stride, dilation, padding):
    from numpy.lib.stride_tricks import sliding_window_view

    from fnn.ops.windows import pad, window_view
    g = geometry("t", sizes, kernel, stride, dilation, padding)
    xp = pad(RNG.standard_normal((2, *sizes, 3)), g.pads)
    nd = len(sizes)
    view = sliding_window_view(xp, g.effective_kernel, axis=tuple(range(1, nd + 1)))
    view = view[(slice(None), *(slice(None, s * (o - 1) + 1, s) for s, o in zip(stride, g.out_sizes)),
                 slice(None), *(slice(None, None, d) for d in dilation))]
    np.testing.assert_array_equal(window_view(xp, g), np.moveaxis(view, nd + 1, -1))
