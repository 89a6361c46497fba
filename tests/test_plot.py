"""fnn.plot: every function returns a Figure that saves to PNG; bad input raises a clear error."""

import time

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from threadpoolctl import threadpool_limits

import fnn
from fnn.training import History


def _saves(fig, tmp_path, name="fig.png") -> None:
    assert isinstance(fig, Figure)
    path = tmp_path / name
    fig.savefig(path)
    assert path.stat().st_size > 0


def _image_axes(fig) -> int:
    return sum(bool(ax.images) for ax in fig.axes)


def test_all_names_exported():
    for name in fnn.plot.__all__:
        assert callable(getattr(fnn.plot, name)), name


# ---------------------------------------------------------------- decision_boundary

def _blobs(n=40, k=2, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])[:k]
    return centres[y] + rng.normal(scale=0.5, size=(n, 2)), y


def test_decision_boundary_scores_true_predictor(tmp_path):
    x, y = _blobs()

    def predict(g):
        assert g.dtype == np.float32 and g.shape[1] == 2
        return np.stack([-g[:, 0], g[:, 0]], axis=1)  # (M, 2) scores

    fig = fnn.plot.decision_boundary(predict, x, y, resolution=50, class_names=["left", "right"])
    ax = fig.axes[0]
    assert "100" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["left", "right"]
    _saves(fig, tmp_path)


@pytest.mark.parametrize("output", ["labels", "prob", "logit", "k3"])
def test_decision_boundary_output_kinds(output):
    k = 3 if output == "k3" else 2
    x, y = _blobs(30, k)
    centres = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])[:k]

    def predict(g):
        d = -((g[:, None, :] - centres[None]) ** 2).sum(-1)
        if output == "labels":
            return d.argmax(1)
        if output == "k3":
            return d
        logit = (g[:, 0:1]) * 2.0
        return 1 / (1 + np.exp(-logit)) if output == "prob" else logit

    fig = fnn.plot.decision_boundary(predict, x, y, resolution=30, title="mine")
    assert fig.axes[0].get_title() == "mine"
    # the predicted regions agree with the true classes: accuracy is in the default title
    assert "100.0%" in fnn.plot.decision_boundary(predict, x, y, resolution=30).axes[0].get_title()


def test_decision_boundary_wrong_predictor_accuracy():
    x, y = _blobs()
    fig = fnn.plot.decision_boundary(lambda g: np.zeros(len(g), int), x, y, resolution=20)
    assert "50.0%" in fig.axes[0].get_title()


def test_decision_boundary_errors():
    x, y = _blobs()
    f = lambda g: np.zeros(len(g), int)
    with pytest.raises(ValueError, match=r"decision_boundary: x must be \(N, 2\).*\(40, 3\)"):
        fnn.plot.decision_boundary(f, np.zeros((40, 3)), y)
    with pytest.raises(ValueError, match=r"decision_boundary: y must be \(N,\).*N=40.*\(39,\)"):
        fnn.plot.decision_boundary(f, x, y[:-1])
    with pytest.raises(ValueError, match=r"decision_boundary: predict_fn must return.*\(5,\)"):
        fnn.plot.decision_boundary(lambda g: np.zeros(5), x, y, resolution=10)
    with pytest.raises(ValueError, match=r"decision_boundary: resolution must be an int >= 2, got 1"):
        fnn.plot.decision_boundary(f, x, y, resolution=1)
    with pytest.raises(ValueError, match=r"decision_boundary: alpha must be a number in \[0, 1\]"):
        fnn.plot.decision_boundary(f, x, y, alpha=2.0)


def test_argument_checks_are_worded_alike():
    """Counts, indices and choices are checked by fnn.validate: one wording everywhere."""
    with pytest.raises(ValueError, match=r"weights: max_units must be a positive int, got 0"):
        fnn.plot.weights(np.zeros((16, 3)), image_shape=(4, 4), max_units=0)
    with pytest.raises(ValueError, match=r"filters: max_filters must be a positive int, got 0"):
        fnn.plot.filters(np.zeros((3, 3, 1, 2)), max_filters=0)
    with pytest.raises(ValueError, match=r"filters: channel must be an int in \[0, 1\], got 2"):
        fnn.plot.filters(np.zeros((3, 3, 2, 2)), channel=2)
    with pytest.raises(ValueError, match=r"image_grid: ncols must be a positive int, got 0"):
        fnn.plot.image_grid(np.zeros((2, 4, 4)), ncols=0)
    with pytest.raises(ValueError, match=r"embed_2d: perplexity must be a finite number > 0"):
        fnn.plot.embed_2d(np.zeros((10, 3)), perplexity=0)


# ---------------------------------------------------------------- weights / filters

def test_weights_images_and_heatmap(tmp_path):
    w = np.random.default_rng(0).normal(size=(64, 100))
    fig = fnn.plot.weights(w, image_shape=(8, 8), max_units=20)
    assert _image_axes(fig) == 20
    im = next(ax.images[0] for ax in fig.axes if ax.images)
    lo, hi = im.get_clim()
    assert lo == -hi and im.get_cmap().name == "RdBu_r"
    _saves(fig, tmp_path, "units.png")

    fig = fnn.plot.weights(w[:, :10])
    assert _image_axes(fig) == 1 and len(fig.axes) == 2  # heatmap + colorbar
    _saves(fig, tmp_path, "heat.png")


def test_weights_errors():
    with pytest.raises(ValueError, match=r"weights: w must be .*\(D_in, D_out\).*\(3, 4, 5\)"):
        fnn.plot.weights(np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match=r"weights: image_shape \(4, 4\) has 16 .*D_in=20"):
        fnn.plot.weights(np.zeros((20, 3)), image_shape=(4, 4))


def test_filters_conv1d_and_conv2d(tmp_path):
    rng = np.random.default_rng(0)
    fig = fnn.plot.filters(rng.normal(size=(5, 1, 6)))  # conv1d, one input channel: lines
    assert sum(len(ax.lines) > 0 for ax in fig.axes) == 6 and _image_axes(fig) == 0
    _saves(fig, tmp_path, "c1.png")

    fig = fnn.plot.filters(rng.normal(size=(5, 3, 8)), max_filters=4)  # conv1d, C_in=3: images
    assert _image_axes(fig) == 4
    assert fig.axes[0].images[0].get_array().shape == (3, 5)

    fig = fnn.plot.filters(rng.normal(size=(3, 3, 1, 16)))
    assert _image_axes(fig) == 16
    _saves(fig, tmp_path, "c2.png")

    fig = fnn.plot.filters(rng.normal(size=(3, 3, 4, 5)))
    assert _image_axes(fig) == 5 and "mean over C_in=4" in fig.get_suptitle()


def test_filters_errors():
    with pytest.raises(ValueError, match=r"filters: kernel must be conv1d.*\(3, 3\)"):
        fnn.plot.filters(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"filters: kernel.*\(1, 3, 3, 1, 2\)"):
        fnn.plot.filters(np.zeros((1, 3, 3, 1, 2)))


# ---------------------------------------------------------------- images

@pytest.mark.parametrize("shape,image_shape", [
    ((10, 8, 8), None), ((10, 8, 8, 1), None), ((10, 8, 8, 3), None), ((10, 64), (8, 8)),
])
def test_image_grid_shapes(tmp_path, shape, image_shape):
    images = np.random.default_rng(0).random(shape)
    fig = fnn.plot.image_grid(images, image_shape=image_shape, ncols=5,
                              labels=[f"#{i}" for i in range(10)], title="grid")
    assert _image_axes(fig) == 10 and len(fig.axes) >= 10
    assert all(not ax.axison for ax in fig.axes)
    assert fig.axes[3].get_title() == "#3"
    _saves(fig, tmp_path)


def test_image_grid_range():
    fig = fnn.plot.image_grid(np.random.default_rng(0).random((3, 4, 4)))
    assert fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    fig = fnn.plot.image_grid(np.full((2, 4, 4), 3.0) + np.arange(2)[:, None, None])
    assert fig.axes[0].images[0].get_clim() == (3.0, 4.0)


def test_image_grid_errors():
    with pytest.raises(ValueError, match=r"image_grid: flat images \(4, 64\) need image_shape"):
        fnn.plot.image_grid(np.zeros((4, 64)))
    with pytest.raises(ValueError, match=r"image_grid: image_shape \(7, 7\) has 49 .* 64"):
        fnn.plot.image_grid(np.zeros((4, 64)), image_shape=(7, 7))
    with pytest.raises(ValueError, match=r"image_grid: expected images .*got shape \(2, 4, 4, 2\)"):
        fnn.plot.image_grid(np.zeros((2, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"image_grid: 3 labels for 2 images"):
        fnn.plot.image_grid(np.zeros((2, 4, 4)), labels=["a", "b", "c"])


def test_image_rows(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((6, 64))
    noisy = x + rng.normal(scale=0.5, size=x.shape)
    rows = {"original": x, "noisy": noisy, "reconstruction": x.reshape(6, 8, 8, 1)}
    fig = fnn.plot.image_rows(rows, image_shape=(8, 8), title="denoising")
    assert _image_axes(fig) == 18
    assert [fig.axes[i].get_ylabel() for i in (0, 6, 12)] == list(rows)
    assert fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    assert fig.axes[6].images[0].get_clim() == (noisy.min(), noisy.max())
    _saves(fig, tmp_path)


def test_image_rows_errors():
    with pytest.raises(ValueError, match=r"image_rows: every row needs the same number.*'b': 3"):
        fnn.plot.image_rows({"a": np.zeros((2, 4, 4)), "b": np.zeros((3, 4, 4))})
    with pytest.raises(ValueError, match=r"image_rows: rows is empty"):
        fnn.plot.image_rows({})
    with pytest.raises(ValueError, match=r"image_rows \(row 'b'\): flat images \(2, 16\)"):
        fnn.plot.image_rows({"a": np.zeros((2, 4, 4)), "b": np.zeros((2, 16))})


def test_reconstruction_strip(tmp_path):
    snaps = [np.full((4, 16), e / 10) for e in range(3)]
    fig = fnn.plot.reconstruction_strip(snaps, original=np.ones((4, 4, 4)), image_shape=(4, 4))
    assert _image_axes(fig) == 16
    assert [fig.axes[i].get_ylabel() for i in (0, 4, 8, 12)] == [
        "original", "epoch 1", "epoch 2", "epoch 3"]
    _saves(fig, tmp_path)
    fig = fnn.plot.reconstruction_strip(snaps, epochs=[1, 10, 50], image_shape=(4, 4))
    assert fig.axes[8].get_ylabel() == "epoch 50"


def test_reconstruction_strip_errors():
    snaps = [np.zeros((4, 4, 4))] * 2
    with pytest.raises(ValueError, match=r"reconstruction_strip: 3 epochs for 2 snapshots"):
        fnn.plot.reconstruction_strip(snaps, epochs=[1, 2, 3])
    with pytest.raises(ValueError, match=r"reconstruction_strip: no snapshots"):
        fnn.plot.reconstruction_strip([])
    with pytest.raises(ValueError, match=r"reconstruction_strip: every snapshot.*\(3, 4, 4\)"):
        fnn.plot.reconstruction_strip(snaps, original=np.zeros((3, 4, 4)))


# ---------------------------------------------------------------- latent space

def test_latent_map_tsne_fast(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    z = rng.normal(size=(60, 5)) + 4 * np.eye(5)[labels]
    pytest.importorskip("sklearn.manifold")  # imported lazily: time the embedding, not the import
    # CPU time of one thread: on a busy machine t-SNE's OpenMP threads spin-wait for each other
    # and count seconds of CPU time (4-15 s with, 0.4-1.2 s without, on a loaded 2-core VM)
    with threadpool_limits(limits=1):
        start = time.process_time()
        fig = fnn.plot.latent_map(z, labels, class_names=["a", "b", "c"])
        assert time.process_time() - start < 10
    ax = fig.axes[0]
    assert "t-SNE" in ax.get_title() and "60 points" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 60
    _saves(fig, tmp_path)


def test_latent_map_pca_none_and_subsample():
    rng = np.random.default_rng(1)
    z, labels = rng.normal(size=(200, 4)), rng.integers(0, 4, 200)
    fig = fnn.plot.latent_map(z, labels, method="pca", max_points=50)
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 50 and "PC" in ax.get_title()
    e1 = fnn.plot.embed_2d(z, method="none")
    np.testing.assert_array_equal(e1, z[:, :2])
    z2 = rng.normal(size=(30, 2))
    np.testing.assert_array_equal(fnn.plot.embed_2d(z2, method="tsne"), z2)  # d == 2: as is
    # seeded subsample: same seed, same figure
    a = fnn.plot.latent_map(z, labels, method="none", max_points=20, seed=3).axes[0]
    b = fnn.plot.latent_map(z, labels, method="none", max_points=20, seed=3).axes[0]
    np.testing.assert_array_equal(np.concatenate([c.get_offsets() for c in a.collections]),
                                  np.concatenate([c.get_offsets() for c in b.collections]))


def test_latent_map_errors():
    with pytest.raises(ValueError, match=r"latent_map: z must be \(N, d\).*\(10,\)"):
        fnn.plot.latent_map(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match=r"latent_map: labels must be \(N,\) with N=10.*\(9,\)"):
        fnn.plot.latent_map(np.zeros((10, 3)), np.zeros(9))
    with pytest.raises(ValueError, match=r"latent_map: method must be one of .*'umap'"):
        fnn.plot.latent_map(np.zeros((10, 3)), np.zeros(10), method="umap")
    with pytest.raises(ValueError, match=r"embed_2d: method must be one of .*'umap'"):
        fnn.plot.embed_2d(np.zeros((10, 3)), method="umap")
    with pytest.raises(ValueError, match=r"latent_map: max_points must be a positive int, got 0"):
        fnn.plot.latent_map(np.zeros((10, 3)), max_points=0)


# ---------------------------------------------------------------- comparisons

def test_sweep_numeric_categorical_errors(tmp_path):
    fig = fnn.plot.sweep([0.001, 0.01, 0.1], {"train": [0.9, 0.95, 0.7], "test": [0.8, 0.9, 0.6]},
                         errors={"test": [0.01, 0.02, 0.05]}, xlabel="lr", ylabel="acc",
                         log_x=True, title="lr sweep")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(ax.get_legend().get_texts()) == 2
    assert len(ax.lines) >= 2
    _saves(fig, tmp_path, "num.png")
    fig = fnn.plot.sweep(["relu", "tanh", "sigmoid"], {"acc": [0.9, 0.85, 0.7]})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["relu", "tanh", "sigmoid"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 1, 2])
    _saves(fig, tmp_path, "cat.png")


def test_sweep_errors():
    with pytest.raises(ValueError, match=r"sweep: series 'test' has shape \(2,\); expected \(3,\)"):
        fnn.plot.sweep([1, 2, 3], {"train": [1, 2, 3], "test": [1, 2]})
    with pytest.raises(ValueError, match=r"sweep: errors for 'val', which is not a series"):
        fnn.plot.sweep([1, 2, 3], {"train": [1, 2, 3]}, errors={"val": [0, 0, 0]})
    with pytest.raises(ValueError, match=r"sweep: log_x needs positive numeric values"):
        fnn.plot.sweep(["a", "b"], {"train": [1, 2]}, log_x=True)


def _runs():
    return {
        "he": History(train={"loss": [1.0, 0.5, 0.3]}, eval={"loss": [1.1, 0.6, 0.4]}),
        "xavier": History(train={"loss": [1.0, 0.7, 0.5]}, eval={"loss": [1.2, 0.8, 0.6]}),
        "zeros": History(train={"loss": [2.3, 2.3, 2.3]}),
    }


def test_curves_overlay(tmp_path):
    fig = fnn.plot.curves_overlay(_runs(), log_y=True)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["he", "xavier", "zeros"]
    _saves(fig, tmp_path)
    fig = fnn.plot.curves_overlay(_runs(), section="both")
    lines = fig.axes[0].lines
    assert len(lines) == 5 and [ln.get_linestyle() for ln in lines].count("--") == 2
    assert lines[0].get_color() == lines[1].get_color()
    runs = {k: v for k, v in _runs().items() if k != "zeros"}
    assert len(fnn.plot.curves_overlay(runs, section="eval").axes[0].lines) == 2


def test_curves_overlay_errors():
    with pytest.raises(ValueError, match=r"run 'zeros' has no eval metric 'loss'.*train: \['loss'\]"):
        fnn.plot.curves_overlay(_runs(), section="eval")
    with pytest.raises(ValueError, match=r"curves_overlay: run 'he' has no train metric 'accuracy'"):
        fnn.plot.curves_overlay(_runs(), "accuracy")
    with pytest.raises(ValueError, match=r"curves_overlay: section must be"):
        fnn.plot.curves_overlay(_runs(), section="test")


def test_bar_table_and_grouped_bars(tmp_path):
    fig = fnn.plot.bar_table(["noisy", "pca", "dae"], [18.123, 22.5, 25.0], errors=[0.1, 0.2, 0.3],
                             ylabel="PSNR (dB)", title="denoising")
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.texts] == ["18.1", "22.5", "25"]
    _saves(fig, tmp_path, "bars.png")
    fig = fnn.plot.grouped_bars(["0.1", "0.3", "0.5"], {"pca": [24, 20, 17], "dae": [27, 24, 21]},
                                ylabel="PSNR")
    ax = fig.axes[0]
    assert len(ax.patches) == 6 and len(ax.texts) == 6
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pca", "dae"]
    _saves(fig, tmp_path, "grouped.png")


def test_bar_errors():
    with pytest.raises(ValueError, match=r"bar_table: values have shape \(2,\); expected \(3,\)"):
        fnn.plot.bar_table(["a", "b", "c"], [1, 2])
    with pytest.raises(ValueError, match=r"bar_table: errors have shape \(1,\); expected \(2,\)"):
        fnn.plot.bar_table(["a", "b"], [1, 2], errors=[1])
    with pytest.raises(ValueError, match=r"grouped_bars: 'dae' has shape \(2,\); expected \(3,\)"):
        fnn.plot.grouped_bars(["a", "b", "c"], {"pca": [1, 2, 3], "dae": [1, 2]})


# ---------------------------------------------------------------- figures a reader can read

def test_curves_overlay_both_has_a_key_for_line_styles():
    runs = {"a": History(train={"loss": [1.0, 0.5]}, eval={"loss": [1.1, 0.6]}),
            "b": History(train={"loss": [1.0, 0.7]}, eval={"loss": [1.2, 0.8]})}
    fig = fnn.plot.curves_overlay(runs, section="both", title="custom title")
    ax = fig.axes[0]
    legends = [a for a in ax.get_children() if isinstance(a, Legend)]
    texts = [t.get_text() for leg in legends for t in leg.get_texts()]
    assert {"a", "b", "train", "eval"} <= set(texts)
    styles = {t.get_text(): h.get_linestyle()
              for leg in legends for t, h in zip(leg.get_texts(), leg.legend_handles)}
    assert styles["train"] == "-" and styles["eval"] == "--"


def test_no_log_axis_over_a_narrow_range():
    narrow = {"a": History(train={"loss": [1.3, 0.9, 0.7]})}
    wide = {"a": History(train={"loss": [2.0, 0.1, 0.01]})}
    assert fnn.plot.curves_overlay(narrow, log_y=True).axes[0].get_yscale() == "linear"
    assert fnn.plot.curves_overlay(wide, log_y=True).axes[0].get_yscale() == "log"
    assert fnn.plot.sweep([1, 2], {"x": [0.7, 1.3]}, log_y=True).axes[0].get_yscale() == "linear"


def test_sweep_error_bars_are_clipped_and_labelled():
    fig = fnn.plot.sweep([1, 2, 3], {"test": [99.0, 95.0, 50.0]},
                         errors={"test": [3.0, 2.0, 60.0]}, y_limits=(0.0, 100.0),
                         error_label="± 1 std over 3 repeats")
    ax = fig.axes[0]
    assert ax.get_legend().get_title().get_text() == "error bars: ± 1 std over 3 repeats"
    segments = [seg for coll in ax.collections for seg in coll.get_segments()]
    tops = [max(s[:, 1]) for s in segments]
    bottoms = [min(s[:, 1]) for s in segments]
    assert max(tops) <= 100.0 and min(bottoms) >= 0.0
    assert max(tops) == 100.0  # 99 + 3 clipped at 100


def test_filters_have_a_colour_bar_and_titles_fit():
    fig = fnn.plot.filters(np.random.default_rng(0).normal(size=(3, 3, 1, 4)))
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    long_title = "DAE 784-256-64, trained and tested at increasing noise levels of every kind"
    fig = fnn.plot.image_rows({"a": np.zeros((2, 4, 4))}, title=long_title)
    title = fig._suptitle.get_text()
    assert "\n" in title and title.replace("\n", " ") == long_title
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width


def test_grouped_bars_label_both_axes():
    fig = fnn.plot.grouped_bars(["0.1", "0.2"], {"a": [20, 18]}, xlabel="noise std",
                                ylabel="PSNR (dB)")
    assert fig.axes[0].get_xlabel() == "noise std" and fig.axes[0].get_ylabel() == "PSNR (dB)"


def test_loss_logger_checks_every(tmp_path):
    with pytest.raises(ValueError, match=r"LossLogger: every must be a positive int, got 0"):
        fnn.LossLogger(tmp_path / "c.png", every=0)
    assert fnn.LossLogger(tmp_path / "c.png", every=3).every == 3


def test_curves_key_on_first_panel_and_where_lines_differ():
    same = History(train={"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]},
                   eval={"loss": [1.1, 0.6], "accuracy": [0.4, 0.6]})
    fig = fnn.plot.curves(same, layout="fixed")
    assert [ax.get_legend() is not None for ax in fig.axes] == [True, False]
    differ = History(train={"loss": [1.0, 0.5]}, eval={"loss": [1.1, 0.6], "accuracy": [0.4, 0.6]})
    fig = fnn.plot.curves(differ)
    assert [ax.get_legend() is not None for ax in fig.axes] == [True, True]
    ticks = fig.axes[0].xaxis.get_major_locator().tick_values(1, 40)
    assert np.all(ticks == np.round(ticks))  # whole epochs


def test_curves_draw_each_section_in_one_colour_in_every_panel():
    history = History(train={"loss": [1.0, 0.5]}, eval={"loss": [1.1, 0.6], "accuracy": [0.4, 0.6]})
    fig = fnn.plot.curves(history)
    colours = {line.get_gid(): line.get_color() for ax in fig.axes for line in ax.get_lines()}
    assert colours["eval:loss"] == colours["eval:accuracy"] != colours["train:loss"]
