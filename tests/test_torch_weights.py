"""PyTorch weights both ways (fnn.from_torch / fnn.to_torch): torch -> fnn -> torch gives the
state_dict back exactly, and the fnn model computes the torch module's outputs in float64
(<= 1e-10): MLP, Conv1D, Conv2D (LeNet), transposed convs, batch-norm in eval mode, layer
and group norm. Every mismatch is named."""

import numpy as np
import pytest

import fnn
from fnn.interop.torch_weights import WeightsMismatch

torch = pytest.importorskip("torch")
nn = torch.nn


def _randomised(module, seed=0):
    """``module`` in float64 with random params and running statistics, in eval mode."""
    torch.manual_seed(seed)
    module = module.double()
    with torch.no_grad():
        for name, value in module.state_dict().items():
            if value.dtype.is_floating_point:
                value.copy_(torch.rand_like(value) + 0.5 if "var" in name
                            else torch.randn_like(value) * 0.5)
    return module.eval()


def _channels_first(x):
    return torch.from_numpy(np.moveaxis(x, -1, 1).copy()) if x.ndim > 2 else torch.from_numpy(x)


def _channels_last(y):
    y = y.detach().numpy()
    return np.moveaxis(y, 1, -1) if y.ndim > 2 else y


CASES = {
    "mlp": (lambda: nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(),
                                  nn.Linear(16, 3)),
            fnn.serial(fnn.linear(16), fnn.tanh(), fnn.linear(16), fnn.relu(), fnn.linear(3)),
            (-1, 6)),
    "conv1d": (lambda: nn.Sequential(nn.Conv1d(2, 4, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.MaxPool1d(2), nn.Conv1d(4, 5, 3, dilation=2, bias=False),
                                     nn.Flatten(), nn.Linear(5 * 2, 7)),
               fnn.serial(fnn.conv1d(4, 3, stride=2, padding=1, bias=True), fnn.relu(),
                          fnn.max_pool1d(2), fnn.conv1d(5, 3, dilation=2), fnn.flatten(),
                          fnn.linear(7)),
               (-1, 24, 2)),
    "lenet": (lambda: nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                    nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84),
                                    nn.ReLU(), nn.Linear(84, 10)),
              fnn.serial(fnn.conv2d(6, 5, padding=2, bias=True), fnn.relu(), fnn.max_pool2d(2),
                         fnn.conv2d(16, 5, bias=True), fnn.relu(), fnn.max_pool2d(2),
                         fnn.flatten(), fnn.linear(120), fnn.relu(), fnn.linear(84), fnn.relu(),
                         fnn.linear(10)),
              (-1, 28, 28, 1)),
    "conv_transpose": (lambda: nn.Sequential(
        nn.Linear(5, 3 * 4 * 4), nn.ReLU(), nn.Unflatten(1, (3, 4, 4)),
        nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1), nn.Tanh(),
        nn.ConvTranspose2d(2, 2, (3, 2), bias=False)),
        fnn.serial(fnn.linear(48), fnn.relu(), fnn.reshape((4, 4, 3)),
                   fnn.conv_transpose2d(2, 3, stride=2, padding=1, output_padding=1, bias=True),
                   fnn.tanh(), fnn.conv_transpose2d(2, (3, 2))),
        (-1, 5)),
    "conv_transpose1d": (lambda: nn.Sequential(nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1,
                                                                  dilation=2)),
                         fnn.serial(fnn.conv_transpose1d(4, 3, stride=2, padding=1, dilation=2,
                                                         bias=True)),
                         (-1, 7, 3)),
    "batch_norm": (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, bias=False), nn.BatchNorm2d(4),
                                         nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 8),
                                         nn.BatchNorm1d(8, eps=1e-3), nn.Linear(8, 3)),
                   fnn.serial(fnn.conv2d(4, 3), fnn.batch_norm(), fnn.relu(), fnn.flatten(),
                              fnn.linear(8), fnn.batch_norm(eps=1e-3), fnn.linear(3)),
                   (-1, 6, 6, 2)),
    "norms": (lambda: nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 6),
                                    nn.GroupNorm(3, 6)),
              fnn.serial(fnn.linear(6), fnn.layer_norm(), fnn.linear(6), fnn.group_norm(3)),
              (-1, 4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip_and_outputs(name):
    make, model, shape = CASES[name]
    module = _randomised(make())
    params, state = fnn.from_torch(model, module, shape)
    assert fnn.tree.same_structure(params, fnn.init(model, fnn.key(0), shape)[1])
    assert all(a.dtype == np.float64 for a in fnn.tree.tree_leaves(params))
    x = np.random.default_rng(1).normal(size=(3, *shape[1:]))
    want = _channels_last(module(_channels_first(x)))
    got = model.apply(params, x, state=state) if model.stateful else model.apply(params, x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    back = fnn.to_torch(model, params, shape, state=state, like=module)
    theirs = module.state_dict()
    assert list(back) == list(theirs)
    for k, v in theirs.items():
        if not k.endswith("num_batches_tracked"):
            assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    module.load_state_dict(back)  # torch takes it as is


def test_default_keys_and_numpy_tensors():
    make, model, shape = CASES["batch_norm"]
    params, state = fnn.from_torch(model, _randomised(make()), shape)
    out = fnn.to_torch(model, params, shape, state=state, tensors="numpy")
    assert list(out)[:5] == ["00_conv2d.weight", "01_batch_norm.weight", "01_batch_norm.bias",
                             "01_batch_norm.running_mean", "01_batch_norm.running_var"]
    assert all(isinstance(v, np.ndarray) for v in out.values())
    params2, state2 = fnn.from_torch(model, out, shape)
    for a, b in zip(fnn.tree.tree_leaves((params, state)), fnn.tree.tree_leaves((params2, state2))):
        np.testing.assert_array_equal(a, b)


def test_files_torch_save_and_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    make, model, shape = CASES["lenet"]
    module = _randomised(make())
    torch.save(module.state_dict(), tmp_path / "lenet.pt")
    st.save_file(module.state_dict(), str(tmp_path / "lenet.safetensors"))
    a, _ = fnn.from_torch(model, tmp_path / "lenet.pt", shape, dtype=np.float32)
    b, _ = fnn.from_torch(model, str(tmp_path / "lenet.safetensors"), shape, dtype=np.float32)
    assert a["00_conv2d"]["w"].dtype == np.float32
    for u, v in zip(fnn.tree.tree_leaves(a), fnn.tree.tree_leaves(b)):
        np.testing.assert_array_equal(u, v)


def test_every_mismatch_is_named():
    model = fnn.serial(fnn.linear(8), fnn.tanh(), fnn.linear(3))
    good = {k: v.numpy() for k, v in _randomised(CASES["mlp"][0]()).state_dict().items()}
    small = {"0.weight": np.zeros((8, 6)), "0.bias": np.zeros(8), "2.weight": np.zeros((3, 8))}
    with pytest.raises(WeightsMismatch, match=r"missing key '2.bias' for 02_linear"):
        fnn.from_torch(model, small, (-1, 6))
    with pytest.raises(WeightsMismatch, match=r"'0.weight' has shape \(16, 6\), 00_linear "
                                              r"\(linear\(8\)\) expects \(8, 6\)"):
        fnn.from_torch(model, good, (-1, 6))
    extra = {**small, "2.bias": np.zeros(3), "4.weight": np.zeros((3, 3))}
    with pytest.raises(WeightsMismatch, match=r"extra keys \['4.weight'\]"):
        fnn.from_torch(model, extra, (-1, 6))
    conv = {"0.weight": np.zeros((4, 2, 3)), "0.bias": np.zeros(4)}
    with pytest.raises(WeightsMismatch, match=r"the state_dict has no more"):
        fnn.from_torch(fnn.serial(fnn.conv1d(4, 3, bias=True), fnn.flatten(), fnn.linear(2)),
                       conv, (-1, 5, 2))
    bn = {"0.running_mean": np.zeros(3)}
    with pytest.raises(WeightsMismatch, match=r"expects keys ending in \['weight', 'bias'\], "
                                              r"but the next key is '0.running_mean'"):
        fnn.from_torch(fnn.serial(fnn.linear(3)), bn, (-1, 2))
    with pytest.raises(WeightsMismatch, match=r"params at '00_linear' \(linear\(8\)\) should have"):
        fnn.to_torch(model, {"00_linear": {}, "01_tanh": {}, "02_linear": {}}, (-1, 6))
    with pytest.raises(WeightsMismatch, match="the template has"):
        params, _ = fnn.from_torch(model, small | {"2.bias": np.zeros(3)}, (-1, 6))
        fnn.to_torch(model, params, (-1, 6), like=good)


def test_a_layer_without_a_torch_layout_is_named():
    scale = fnn.layer("scale", lambda k, s: (s, {"s": np.ones(s[-1:])}),
                      lambda p, x: (x * p["s"], x), lambda p, x, dy, g: ({"s": dy}, None))
    with pytest.raises(WeightsMismatch, match=r"layer scale\(\) at '01_scale' \(kind None\) has "
                                              "no known PyTorch layout"):
        fnn.from_torch(fnn.serial(fnn.linear(2), scale), {}, (-1, 2))


def test_safetensors_order_and_order_argument(tmp_path):
    st = pytest.importorskip("safetensors.torch")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU())
            self.classifier = nn.Linear(3 * 6, 2)

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))

    net = _randomised(Net())
    model = fnn.serial(fnn.conv1d(3, 3, bias=True), fnn.relu(), fnn.flatten(), fnn.linear(2))
    st.save_file(net.state_dict(), str(tmp_path / "net.safetensors"))
    with pytest.raises(WeightsMismatch, match="'classifier.weight'"):  # sorted: classifier first
        fnn.from_torch(model, tmp_path / "net.safetensors", (-1, 8, 1))
    params, _ = fnn.from_torch(model, tmp_path / "net.safetensors", (-1, 8, 1), order=net)
    x = np.random.default_rng(0).normal(size=(2, 8, 1))
    np.testing.assert_allclose(model.apply(params, x), net(_channels_first(x)).detach().numpy(),
                               atol=1e-10, rtol=0)


class _Seq(nn.Module):
    """Sequence modules chained as fnn chains them (batch first)."""

    def __init__(self, *mods, last_state=False, causal=False):
        super().__init__()
        self.mods = nn.ModuleList(mods)
        self.last_state, self.causal = last_state, causal

    def forward(self, x):
        for m in self.mods:
            if isinstance(m, (nn.LSTM, nn.GRU, nn.RNN)):
                y, h = m(x)
                h = h[0] if isinstance(m, nn.LSTM) else h
                x = torch.cat(list(h[-(2 if m.bidirectional else 1):]), -1) \
                    if self.last_state and m is self.mods[-1] else y
            elif isinstance(m, nn.MultiheadAttention):
                t = x.shape[1]
                mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1) if self.causal else None
                x = m(x, x, x, need_weights=False, attn_mask=mask)[0]
            else:
                x = m(x)
        return x


SEQ_CASES = {
    "embedding_lstm_stack": (
        lambda: _Seq(nn.Embedding(11, 6), nn.LSTM(6, 5, num_layers=2, batch_first=True),
                     nn.Linear(5, 3)),
        fnn.serial(fnn.embedding(11, 6), fnn.lstm(5), fnn.lstm(5), fnn.linear(3)), (-1, 7)),
    "gru_bidirectional_last": (
        lambda: _Seq(nn.GRU(4, 5, batch_first=True, bidirectional=True), last_state=True),
        fnn.serial(fnn.gru(5, bidirectional=True, return_sequences=False)), (-1, 7, 4)),
    "lstm_bidirectional": (
        lambda: _Seq(nn.LSTM(4, 3, batch_first=True, bidirectional=True), nn.Linear(6, 2)),
        fnn.serial(fnn.lstm(3, bidirectional=True), fnn.linear(2)), (-1, 7, 4)),
    "rnn_relu": (
        lambda: _Seq(nn.RNN(4, 5, nonlinearity="relu", batch_first=True)),
        fnn.serial(fnn.rnn(5, "relu")), (-1, 7, 4)),
    "attention": (
        lambda: _Seq(nn.MultiheadAttention(8, 2, batch_first=True), nn.LayerNorm(8)),
        fnn.serial(fnn.multi_head_attention(2), fnn.layer_norm()), (-1, 5, 8)),
    "causal_attention": (
        lambda: _Seq(nn.Embedding(9, 8), nn.MultiheadAttention(8, 4, batch_first=True),
                     causal=True),
        fnn.serial(fnn.embedding(9, 8), fnn.multi_head_attention(4, causal=True)), (-1, 6)),
}


@pytest.mark.parametrize("name", sorted(SEQ_CASES))
def test_sequence_layers_round_trip_and_outputs(name):
    make, model, shape = SEQ_CASES[name]
    module = _randomised(make())
    params, _ = fnn.from_torch(model, module, shape)
    rng = np.random.default_rng(2)
    if len(shape) == 2:  # token ids
        x = rng.integers(0, 9, size=(3, *shape[1:]))
        want = module(torch.from_numpy(x)).detach().numpy()
    else:
        x = rng.normal(size=(3, *shape[1:]))
        want = module(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model.apply(params, x), want, rtol=0, atol=1e-10)
    back = fnn.to_torch(model, params, shape, like=module)
    theirs = module.state_dict()
    assert list(back) == list(theirs)
    for k, v in theirs.items():
        assert torch.equal(back[k], v), k


def test_recurrent_stack_mismatch_names_the_layer_key():
    module = nn.LSTM(4, 5, num_layers=2, batch_first=True)
    with pytest.raises(WeightsMismatch, match=r"'weight_ih_l1' has shape \(20, 5\), 01_lstm "
                                              r"\(lstm\(6\)\) expects \(24, 5\)"):
        fnn.from_torch(fnn.serial(fnn.lstm(5), fnn.lstm(6)), module, (-1, 3, 4))
    with pytest.raises(WeightsMismatch, match=r"extra keys \['weight_ih_l1'"):
        fnn.from_torch(fnn.serial(fnn.lstm(5)), module, (-1, 3, 4))


def test_flatten_order_reaches_into_parallel_branches_only():
    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 3, 3)
            self.a, self.b = nn.Linear(12, 4), nn.Linear(12, 2)
            self.c = nn.Linear(6, 5)

        def forward(self, x):
            h = self.conv(x).flatten(1)
            return self.c(torch.cat([self.a(h), torch.tanh(self.b(h))], 1))

    net = _randomised(Heads())
    model = fnn.serial(fnn.conv1d(3, 3, bias=True), fnn.flatten(),
                       fnn.parallel(fnn.linear(4), fnn.serial(fnn.linear(2), fnn.tanh())),
                       fnn.concatenate(), fnn.linear(5))
    params, _ = fnn.from_torch(model, net, (-1, 6, 2))
    x = np.random.default_rng(0).normal(size=(3, 6, 2))
    np.testing.assert_allclose(model.apply(params, x), net(_channels_first(x)).detach().numpy(),
                               atol=1e-10, rtol=0)
    back = fnn.to_torch(model, params, (-1, 6, 2), like=net)
    assert all(torch.equal(back[k], v) for k, v in net.state_dict().items())
