"""A model describes itself: readable reprs, listable children, fnn.summary."""


import pytest

import fnn


def usps_conv1d():
    return fnn.serial(fnn.conv1d(32, 3), fnn.max_pool1d(2, 2), fnn.flatten(), fnn.linear(100),
                      fnn.relu(), fnn.linear(10))


def test_reprs_read_like_the_code_that_built_the_model():
    model = fnn.serial(fnn.linear(128), fnn.tanh(), fnn.linear(10))
    assert repr(model) == "serial(linear(128), tanh(), linear(10))"
    assert repr(usps_conv1d()) == ("serial(conv1d(32, 3), max_pool1d(2), flatten(), linear(100), "
                                   "relu(), linear(10))")
    nested = fnn.serial(fnn.parallel(fnn.linear(2), fnn.identity()), fnn.concatenate(),
                        fnn.residual(fnn.linear(3), fnn.leaky_relu(0.1)), fnn.dropout(0.5))
    assert repr(nested) == ("serial(parallel(linear(2), identity()), concatenate(axis=-1), "
                            "residual(linear(3), leaky_relu(0.1)), dropout(0.5))")
    assert [c.name for c in nested.children] == ["parallel", "concatenate", "residual", "dropout"]
    assert nested.children[0].flow == "parallel" and nested.children[2].flow == "residual"


def test_summary_counts_like_torch_and_gives_every_output_shape(capsys):
    rows = fnn.summary(usps_conv1d(), (-1, 256, 1))
    text = capsys.readouterr().out
    assert sum(r["params"] for r in rows) == 407_606  # the report's net, no conv bias
    assert "total params: 407,606" in text and "(N, 127, 32)" in text
    assert [r["output_shape"] for r in rows] == [(-1, 254, 32), (-1, 127, 32), (-1, 4064),
                                                 (-1, 100), (-1, 100), (-1, 10)]
    _, params = usps_conv1d().init(fnn.key(0), (-1, 256, 1))
    assert fnn.tree_size(params) == 407_606


def test_summary_walks_nested_combinators():
    model = fnn.serial(fnn.linear(8), fnn.serial(fnn.linear(4), fnn.tanh(), name="head"),
                       fnn.parallel(fnn.linear(2), fnn.linear(3)), fnn.concatenate())
    rows = fnn.summary(model, (-1, 5), print_fn=None)
    assert [r["path"] for r in rows] == ["00_linear", "01_head", "01_head/00_linear",
                                         "01_head/01_tanh", "02_parallel",
                                         "02_parallel/00_linear", "02_parallel/01_linear",
                                         "03_concatenate"]
    shapes = {r["path"]: r["output_shape"] for r in rows}
    assert shapes["02_parallel/01_linear"] == (-1, 3) and shapes["03_concatenate"] == (-1, 5)
    assert sum(r["params"] for r in rows) == 48 + 36 + 10 + 15
    with pytest.raises(TypeError, match="expected an fnn.Layer"):
        fnn.summary("model", (-1, 3))


def test_summary_matches_torch_parameter_count():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = nn.Sequential(nn.Conv1d(1, 32, 3, bias=False), nn.MaxPool1d(2, 2), nn.Flatten(),
                        nn.Linear(32 * 127, 100), nn.ReLU(), nn.Linear(100, 10))
    torch_count = sum(p.numel() for p in net.parameters())
    rows = fnn.summary(usps_conv1d(), (-1, 256, 1), print_fn=None)
    assert sum(r["params"] for r in rows) == torch_count == 407_606

