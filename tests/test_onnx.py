"""ONNX export (fnn.export_onnx): every built-in layer kind and every example model passes
onnx.checker and runs in onnxruntime with fnn's outputs (1e-5, float32) at two batch sizes;
a layer without an ONNX form is named, and the converters= hook gives it one."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import fnn
from fnn.interop.onnx_converters import CONVERTERS
from fnn.interop.onnx_export import OnnxExportError
from fnn.seq2seq import padding_mask, starts_with
from fnn.translators import masked_mean

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# (model, input shape): at least one per layer kind (the kind is the test id)
LAYERS = {
    "linear": (fnn.linear(5), (-1, 7)),
    "linear_3d": (fnn.linear(5, bias=False), (-1, 3, 7)),
    "conv1d": (fnn.conv1d(4, 3, stride=2, padding="same", dilation=1, bias=True), (-1, 11, 3)),
    "conv1d_dilated": (fnn.conv1d(4, 3, dilation=2, padding=(1, 2)), (-1, 11, 3)),
    "conv2d": (fnn.conv2d(4, (3, 2), stride=(2, 1), padding="same", bias=True), (-1, 9, 8, 3)),
    "conv_transpose1d": (fnn.conv_transpose1d(4, 3, stride=2, padding=1, output_padding=1,
                                              bias=True), (-1, 6, 3)),
    "conv_transpose2d": (fnn.conv_transpose2d(2, 3, stride=2, padding=1, output_padding=1,
                                              dilation=1, bias=True), (-1, 5, 4, 3)),
    "max_pool1d": (fnn.max_pool1d(3, stride=2, padding=1), (-1, 10, 3)),
    "max_pool2d": (fnn.max_pool2d(2), (-1, 9, 8, 3)),
    "avg_pool1d": (fnn.avg_pool1d(2, stride=1), (-1, 10, 3)),
    "avg_pool2d": (fnn.avg_pool2d(3, stride=2, padding=1), (-1, 9, 8, 3)),
    "upsample1d": (fnn.upsample1d(3), (-1, 5, 2)),
    "upsample2d": (fnn.upsample2d((2, 3)), (-1, 4, 5, 2)),
    "global_avg_pool": (fnn.global_avg_pool(), (-1, 4, 5, 3)),
    "flatten": (fnn.flatten(), (-1, 4, 5, 3)),
    "reshape": (fnn.reshape((5, -1)), (-1, 4, 5, 3)),
    "dropout": (fnn.dropout(0.5), (-1, 6)),
    "batch_norm": (fnn.batch_norm(eps=1e-3), (-1, 5, 4, 3)),
    "batch_norm_plain": (fnn.batch_norm(affine=False), (-1, 6)),
    "layer_norm": (fnn.layer_norm(), (-1, 5, 6)),
    "layer_norm_axes": (fnn.layer_norm((-2, -1), affine=False), (-1, 5, 6)),
    "group_norm": (fnn.group_norm(2, eps=1e-4), (-1, 5, 4, 6)),
    "concatenate": (fnn.serial(fnn.parallel(fnn.linear(3), fnn.tanh()), fnn.concatenate()),
                    (-1, 4)),
    "add": (fnn.serial(fnn.parallel(fnn.linear(4), fnn.sigmoid()), fnn.add()), (-1, 4)),
    "residual": (fnn.residual(fnn.linear(4), fnn.relu()), (-1, 4)),
    "parallel_outputs": (fnn.parallel(fnn.linear(2), fnn.identity()), (-1, 4)),
    **{kind: (getattr(fnn, kind)(), (-1, 3, 5)) for kind in (
        "identity", "relu", "tanh", "sigmoid", "stable_sigmoid", "softplus", "sine", "sinc",
        "gaussian", "gelu", "elu", "leaky_relu", "softmax", "log_softmax")},
    "each_pick": (fnn.serial(fnn.parallel(fnn.linear(3), fnn.tanh()),
                             fnn.each(fnn.relu(), fnn.sigmoid()), fnn.pick(1)), (-1, 4)),
    "embedding": (fnn.embedding(11, 6), (-1, 5)),
    "positional_embedding": (fnn.positional_embedding(9), (-1, 5, 6)),
    "sinusoidal_embedding": (fnn.sinusoidal_embedding(9), (-1, 5, 6)),
    "rnn": (fnn.rnn(4), (-1, 5, 3)),
    "rnn_relu_last_bidirectional": (fnn.rnn(4, "relu", return_sequences=False,
                                            bidirectional=True), (-1, 5, 3)),
    "gru": (fnn.gru(4), (-1, 5, 3)),
    "gru_bidirectional": (fnn.gru(4, bidirectional=True), (-1, 5, 3)),
    "gru_last": (fnn.gru(4, return_sequences=False), (-1, 5, 3)),
    "lstm": (fnn.lstm(4), (-1, 5, 3)),
    "lstm_last_bidirectional": (fnn.lstm(4, return_sequences=False, bidirectional=True),
                                (-1, 5, 3)),
    "multi_head_attention": (fnn.multi_head_attention(2), (-1, 5, 8)),
    "multi_head_attention_causal": (fnn.multi_head_attention(4, causal=True, dropout=0.1),
                                    (-1, 5, 8)),
    "gpt": (fnn.serial(fnn.embedding(13, 8), fnn.positional_embedding(16),
                       fnn.transformer_block(2, 8), fnn.transformer_block(2, 8),
                       fnn.layer_norm(), fnn.linear(13)), (-1, 6)),
    "lstm_classifier": (fnn.serial(fnn.embedding(13, 8), fnn.lstm(8), fnn.dropout(0.2),
                                   fnn.gru(6, return_sequences=False), fnn.linear(3)), (-1, 6)),
    # several inputs: token ids (int64), padding masks (bool), states
    "cross_attention": (fnn.cross_attention(2), ((-1, 4, 8), (-1, 5, 6), (-1, 5))),
    "cross_attention_dim": (fnn.cross_attention(2, dim=4), ((-1, 4, 8), (-1, 5, 6), (-1, 5))),
    "luong_attention": (fnn.luong_attention(), ((-1, 4, 8), (-1, 5, 6), (-1, 5))),
    "luong_attention_dim": (fnn.luong_attention(5), ((-1, 4, 8), (-1, 5, 6), (-1, 5))),
    "masked_mean": (masked_mean(), ((-1, 5, 6), (-1, 5))),
    "padding_mask": (padding_mask(0), (-1, 5)),
    "starts_with": (fnn.serial(starts_with(1), fnn.embedding(11, 4)), (-1, 5)),
    "multi_head_attention_mask": (fnn.multi_head_attention(2, mask=True), ((-1, 5, 8), (-1, 5))),
    "multi_head_attention_causal_mask": (fnn.multi_head_attention(2, causal=True, mask=True),
                                         ((-1, 5, 8), (-1, 5))),
    "transformer_block_mask": (fnn.transformer_block(2, 8, causal=False, mask=True),
                               ((-1, 5, 8), (-1, 5))),
    "gru_mask_bidirectional": (fnn.gru(4, bidirectional=True, mask=True), ((-1, 5, 3), (-1, 5))),
    "gru_initial_state_bidirectional": (fnn.gru(4, bidirectional=True, initial_state=True),
                                        ((-1, 5, 3), (-1, 2, 4))),
    "lstm_initial_state_mask": (fnn.lstm(4, initial_state=True, mask=True),
                                ((-1, 5, 3), (-1, 4), (-1, 4), (-1, 5))),
    "rnn_mask_last": (fnn.rnn(4, return_sequences=False, mask=True), ((-1, 5, 3), (-1, 5))),
    "each_inputs": (fnn.each(fnn.embedding(11, 4), fnn.linear(3)), ((-1, 5), (-1, 2))),
    "pick_input": (fnn.pick(1), ((-1, 3), (-1, 4))),
    "leaky_relu_0.2": (fnn.leaky_relu(0.2), (-1, 5)),
    "elu_0.5": (fnn.elu(0.5), (-1, 5)),
}


def _random_params(tree, rng):
    """Params (or state) with random values: a variance stays positive."""
    return fnn.tree.tree_map(lambda a: (rng.uniform(0.5, 1.5, a.shape) if a.ndim else a)
                             .astype(np.float32) * (1 if a.ndim else 1), tree)


def random_input(rng, batch, shape, elem, vocab=11):
    """A random array for one graph input: float32 normal, or right-padded rows (each with
    1 to T real steps, the first row full): bool masks, int64 ids in [1, vocab) starting with
    the start id 1 and padded with 0."""
    shape = (batch, *shape[1:])
    if elem == onnx.TensorProto.FLOAT:
        return rng.normal(size=shape).astype(np.float32)
    lengths = rng.integers(1, shape[1] + 1, size=batch)
    lengths[0] = shape[1]
    real = np.arange(shape[1]) < lengths[:, None]
    if elem == onnx.TensorProto.BOOL:
        return real
    ids = rng.integers(1, vocab, size=shape)
    ids[:, 0] = 1
    return np.where(real, ids, 0)


def check_export(model, input_shape, tmp_path, *, params=None, state=None, seed=0, tol=1e-5,
                 feed=None):
    """Export, check, and compare onnxruntime with ``model.apply`` at batch sizes 1 and 5 on
    random inputs (``feed(rng, batch) -> input`` when given)."""
    rng = np.random.default_rng(seed)
    _, p, s = fnn.init(model, fnn.key(seed), input_shape)
    if params is None:
        params = fnn.tree.tree_map(lambda a: a + rng.normal(0, 0.1, a.shape).astype(a.dtype), p)
        state = fnn.tree.tree_map(lambda a: rng.uniform(0.5, 1.5, a.shape).astype(a.dtype), s)
    path = tmp_path / "model.onnx"
    fnn.export_onnx(model, params, input_shape, path, state=state or None)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.doc_string == repr(model)
    several = isinstance(input_shape[0], tuple)
    shapes = input_shape if several else (input_shape,)
    names = [f"input_{i}" for i in range(len(shapes))] if several else ["input"]
    assert [i.name for i in proto.graph.input] == names
    for graph_input in proto.graph.input:
        assert graph_input.type.tensor_type.shape.dim[0].dim_param == "batch"
    elems = [i.type.tensor_type.elem_type for i in proto.graph.input]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        xs = [random_input(rng, batch, sh, e) for sh, e in zip(shapes, elems)]
        if "sinc" in repr(model):
            xs[0][0, 0, 0] = 0.0
        x = (feed(rng, batch) if feed else tuple(xs)) if several else xs[0]
        want = model.apply(params, x, state=state) if model.stateful else model.apply(params, x)
        got = session.run(None, dict(zip(names, x if several else (x,))))
        want = want if isinstance(want, tuple) else (want,)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    return proto


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_kind(name, tmp_path):
    model, shape = LAYERS[name]
    check_export(model, shape, tmp_path)


def test_every_builtin_kind_is_tested():
    kinds = set()

    def walk(layer):
        kinds.add(layer.kind)
        for child in layer.children:
            walk(child)

    for model, _ in LAYERS.values():
        walk(model)
    assert set(CONVERTERS) <= kinds


@pytest.mark.parametrize("layer,match", [
    (fnn.serial(fnn.linear(3), fnn.lstm(4, return_state=True)), "return_state"),
])
def test_sequence_layers_without_onnx_form(layer, match, tmp_path):
    shape = ((-1, 5, 3), (-1, 5)) if len(layer.inputs) > 1 else (-1, 5, 3)
    _, params = layer.init(fnn.key(0), shape)
    with pytest.raises(OnnxExportError, match=match):
        fnn.export_onnx(layer, params, shape, tmp_path / "m.onnx")


def _example(name):
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"onnx_example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
        sys.modules.pop(f"onnx_example_{name}", None)
    return module


class _Data:
    class_names = [str(i) for i in range(10)]


def _example_models():
    """(id, model, input shape) of every model the examples build."""
    dense, conv1d = _example("dense_common"), _example("conv1d_common")
    ae, cae = _example("autoencoder_common"), _example("conv_autoencoder")
    fashion, bn = _example("fashion_classifier"), _example("usps_bn_cnn")
    out = [("readme_mlp", fnn.serial(fnn.linear(128), fnn.tanh(), fnn.linear(10)), (-1, 64))]
    for act in ("tanh", "relu", "sigmoid", "leaky_relu", "elu", "softplus", "sine", "gelu"):
        out.append((f"dense_usps_{act}", dense.build("usps", _Data(), activation=act), (-1, 256)))
    out.append(("dense_toy", dense.build("xor", _Data(), hidden=16), (-1, 2)))
    for widths in ((32,), (16, 32), (8, 16, 32)):
        out.append((f"conv1d_{'_'.join(map(str, widths))}", conv1d.conv_net(widths, 5), (-1, 256, 1)))
    for name, hidden in ae.ARCHITECTURES.items():
        out.append((f"autoencoder_{name}", ae.build(hidden, 784)[0], (-1, 784)))
    out.append(("conv_autoencoder", cae.build()[0], (-1, 784)))
    out.append(("fashion_mlp", fashion.build("mlp"), (-1, 28, 28, 1)))
    out.append(("fashion_cnn", fashion.build("cnn"), (-1, 28, 28, 1)))
    out.append(("usps_bn_cnn", bn.build(), (-1, 16, 16, 1)))
    char_lm = _example("char_lm_models")
    out.append(("char_lm_gpt", char_lm.gpt(65, n_layer=2, context=16), (-1, 16)))
    out.append(("char_lm_lstm", char_lm.lstm_model(65, embed=8, hidden=16), (-1, 16)))
    translate = _example("translate")
    for kind in ("gru", "transformer"):  # teacher-forced: (source, target_in) -> logits
        out.append((f"translate_{kind}", translate.build(kind, _Vocabs(), _SMALL), _PAIR))
    return out


class _Vocabs:
    src_vocab, tgt_vocab = range(17), range(19)


class _SMALL:  # translate.py's arguments, small; its default dropout (the identity here)
    dim, hidden, width, heads, layers, dropout = 8, 8, 8, 2, 2, None


_PAIR = ((-1, 7), (-1, 6))


def _translation_feed(rng, batch):
    """``(source, target_in)``: right-padded source ids (the first row full, the others 1 to 7
    words), target ``<s>`` + ids, padded too."""
    source = random_input(rng, batch, _PAIR[0], onnx.TensorProto.INT64, vocab=17)
    source = np.where(source > 0, rng.integers(3, 17, size=source.shape), 0)
    return source, random_input(rng, batch, _PAIR[1], onnx.TensorProto.INT64, vocab=19)


EXAMPLE_MODELS = _example_models()


@pytest.mark.parametrize("name,model,shape", EXAMPLE_MODELS, ids=[m[0] for m in EXAMPLE_MODELS])
def test_every_example_model(name, model, shape, tmp_path):
    proto = check_export(model, shape, tmp_path,
                         feed=_translation_feed if name.startswith("translate") else None)
    if name.startswith("translate"):  # two int64 inputs, named in their doc strings
        assert [(i.type.tensor_type.elem_type, i.doc_string) for i in proto.graph.input] == \
            [(onnx.TensorProto.INT64, "source"), (onnx.TensorProto.INT64, "target")]


def _scale(n):
    def init(key, shape):
        return shape, {"s": np.full(shape[-1:], 2.0, np.float32)}

    def forward(params, x):
        return x * params["s"], x

    return fnn.layer(f"scale({n})", init, forward, lambda p, x, dy, g: ({"s": dy}, None))


def test_layer_without_onnx_form_is_named_and_the_hook_gives_one(tmp_path):
    model = fnn.serial(fnn.linear(3), fnn.serial(fnn.tanh(), _scale(3)))
    _, params = model.init(fnn.key(0), (-1, 4))
    with pytest.raises(OnnxExportError, match=r"layer scale\(3\) \(params path "
                                              r"'01_serial/01_scale', kind None\) has no ONNX form"):
        fnn.export_onnx(model, params, (-1, 4), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    hook = {"scale": lambda g, layer, p, s, x, shape: g.op("Mul", x, g.const(p["s"]))}
    fnn.export_onnx(model, params, (-1, 4), tmp_path / "m.onnx", converters=hook)
    x = np.ones((2, 4), np.float32)
    y, = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": x})
    np.testing.assert_allclose(y, model.apply(params, x), rtol=1e-6)


def test_opsets_and_bad_arguments(tmp_path):
    model, shape = LAYERS["group_norm"]
    _, params = model.init(fnn.key(0), shape)
    for opset in (17, 18, 20):
        fnn.export_onnx(model, params, shape, tmp_path / "g.onnx", opset=opset)
        assert onnx.load(str(tmp_path / "g.onnx")).opset_import[0].version == opset
    with pytest.raises(ValueError, match="opset must be 17 or later"):
        fnn.export_onnx(model, params, shape, tmp_path / "g.onnx", opset=11)
    with pytest.raises(OnnxExportError, match="params"):
        fnn.export_onnx(fnn.serial(fnn.linear(2)), {"00_dense": {}}, (-1, 3), tmp_path / "g.onnx")
    bn = fnn.serial(fnn.linear(2), fnn.batch_norm())
    _, bn_params, _ = fnn.init(bn, fnn.key(0), (-1, 3))
    with pytest.raises(OnnxExportError, match="has state .* pass state="):
        fnn.export_onnx(bn, bn_params, (-1, 3), tmp_path / "g.onnx")


def test_names_of_inputs_and_outputs(tmp_path):
    model, shape = LAYERS["parallel_outputs"]
    proto = check_export(model, shape, tmp_path)
    assert [o.name for o in proto.graph.output] == ["output_0", "output_1"]
    assert [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] \
        == ["batch", 2]
    proto = check_export(*LAYERS["gpt"], tmp_path)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [o.name for o in proto.graph.output] == ["output"]


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'fnn\[onnx\]'"):
        fnn.export_onnx(fnn.linear(2), {}, (-1, 3), tmp_path / "m.onnx")


def test_the_example_models_listed_are_all_of_them():
    """A new example building a model joins _example_models (and so is exported)."""
    covered = {"autoencoder_common", "char_lm_models", "conv1d_common", "conv_autoencoder",
               "dense_common", "fashion_classifier", "translate", "usps_bn_cnn"}
    building = {p.stem for p in EXAMPLES.glob("*.py")
                if any(f"{c}(" in p.read_text() for c in (
                    "fnn.serial", "fnn.residual", "fnn.parallel", "_translator"))}
    assert building <= covered, f"examples whose models test_onnx does not export: " \
                                f"{sorted(building - covered)}"


@pytest.mark.parametrize("layer", [fnn.cross_attention(2), fnn.luong_attention(),
                                   fnn.gru(4, bidirectional=True, mask=True)], ids=repr)
def test_a_row_of_padding_only(layer, tmp_path):
    """A row whose mask is all False: attention sees no key (0, no NaN), the recurrence runs
    no step (zeros), as in fnn."""
    shapes = ((-1, 3, 4), (-1, 5, 4), (-1, 5)) if len(layer.inputs) == 3 else \
        ((-1, 5, 4), (-1, 5))
    _, params = layer.init(fnn.key(0), shapes)
    fnn.export_onnx(layer, params, shapes, tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(2, *s[1:])).astype(np.float32) for s in shapes[:-1]]
    inputs.append(np.array([[True] * 5, [False] * 5]))
    got, = ort.InferenceSession(str(tmp_path / "m.onnx")).run(
        None, {f"input_{i}": a for i, a in enumerate(inputs)})
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, layer.apply(params, tuple(inputs)), rtol=1e-5, atol=1e-5)
