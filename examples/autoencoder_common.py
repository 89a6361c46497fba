"""Shared pieces of the section 3.3 autoencoder scripts (fashion_autoencoders, latent_tsne,
denoising): model builders, the training loop (optionally denoising: noisy input, clean
target, fresh noise for every batch), PSNR/BCE metrics, latent statistics, loading saved
params.

The report's recipe: fully connected autoencoders on Fashion-MNIST, tanh everywhere in the
encoder (code layer included), a mirrored decoder with tanh hidden layers and a sigmoid output,
binary cross-entropy, Adam (lr 1e-3, batch 128 here), 30 epochs.

BCE values are ``fnn.bce``: summed over the pixels and averaged over the images, i.e. nats per
image; ``per pixel`` divides that by the number of pixels (784 for Fashion-MNIST).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import fnn

# The three architectures of the report: encoder widths after the input layer.
ARCHITECTURES: dict[str, tuple[int, ...]] = {
    "ae_64": (64,),
    "ae_256_64": (256, 64),
    "ae_512_256_128_64": (512, 256, 128, 64),
}
DEEPEST = "ae_512_256_128_64"
LR = 1e-3
BATCH_SIZE = 128
EPOCHS = 30
QUICK_TRAIN, QUICK_TEST, QUICK_EPOCHS = 1000, 300, 2
SNAPSHOT_IMAGES = 8  # fixed test images reconstructed after every epoch


def label(name: str, n_in: int = 784) -> str:
    """``"ae_256_64"`` -> ``"784-256-64"``."""
    return "-".join(str(n) for n in (n_in, *ARCHITECTURES[name]))


def build(hidden: tuple[int, ...], n_in: int) -> tuple[fnn.Layer, fnn.Layer, fnn.Layer]:
    """``(model, encoder, decoder)``, ``model = serial(encoder, decoder)``.

    Encoder: ``linear(h) -> tanh`` for every width in ``hidden`` (the code layer is tanh too).
    Decoder: the mirror image, tanh hidden layers, ``linear(n_in) -> sigmoid`` output.
    In the model's params the encoder is ``params["00_serial"]``, the decoder ``"01_serial"``."""
    enc_layers, dec_layers = [], []
    for h in hidden:
        enc_layers += [fnn.linear(h), fnn.tanh()]
    for h in reversed(hidden[:-1]):
        dec_layers += [fnn.linear(h), fnn.tanh()]
    dec_layers += [fnn.linear(n_in), fnn.sigmoid()]
    encoder, decoder = fnn.serial(*enc_layers), fnn.serial(*dec_layers)
    return fnn.serial(encoder, decoder), encoder, decoder


def init_params(model: fnn.Layer, n_in: int, seed: int):
    return model.init(fnn.fold_in(fnn.key(seed), 0), (-1, n_in))[1]


def encode(encoder: fnn.Layer, params, x) -> np.ndarray:
    """The code (latent) activations of ``x``: the encoder's part of the model's params."""
    return fnn.predict(encoder, params["00_serial"], x)


# --------------------------------------------------------------------------------- metrics
def psnr_per_image(clean, other, peak: float = 1.0) -> np.ndarray:
    """10 log10(peak^2 / MSE) for every image (inf where the images are identical)."""
    mse = np.mean((np.asarray(clean, np.float64) - np.asarray(other, np.float64)) ** 2,
                  axis=tuple(range(1, np.ndim(clean))))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak ** 2 / mse)


def psnr(clean, other, peak: float = 1.0) -> float | None:
    """Mean over the images of the per-image PSNR in dB; None when they are all identical
    (e.g. the "noisy" input at noise level 0)."""
    values = psnr_per_image(clean, other, peak)
    return float(values.mean()) if np.all(np.isfinite(values)) else None


def reconstruction_metrics(model, params, x_in, x_clean) -> dict:
    """BCE per image and per pixel (nats), pixel MSE and PSNR of ``model(x_in)`` against
    ``x_clean``."""
    recon = fnn.predict(model, params, x_in)
    bce = fnn.bce.value(recon, x_clean)
    return {"bce_per_image": bce, "bce_per_pixel": bce / np.prod(x_clean.shape[1:]),
            "mse": float(np.mean((recon - x_clean) ** 2)), "psnr_db": psnr(x_clean, recon)}


def latent_stats(z: np.ndarray, *, saturated: float = 0.9, dead: float = 0.05) -> dict:
    """How the tanh code units are used over a data set ``z`` (N, units).

    A unit is *saturated* when its mean |activation| exceeds ``saturated`` (it sits near +-1),
    *dead* when its mean |activation| is below ``dead`` (it stays near 0), *constant* when its
    standard deviation over the data is below ``dead`` (it carries no information, wherever it
    sits; saturated units usually are)."""
    mean_abs, std = np.abs(z).mean(axis=0), z.std(axis=0)
    return {
        "units": int(z.shape[1]),
        "mean_abs_activation": float(np.abs(z).mean()),
        "fraction_activations_above_0.95": float(np.mean(np.abs(z) > 0.95)),
        "fraction_activations_below_0.05": float(np.mean(np.abs(z) < 0.05)),
        "units_saturated": int(np.sum(mean_abs > saturated)),
        "units_dead": int(np.sum(mean_abs < dead)),
        "units_constant": int(np.sum(std < dead)),
        "units_saturated_and_constant": int(np.sum((mean_abs > saturated) & (std < dead))),
        "unit_std_min": float(std.min()),
        "unit_std_median": float(np.median(std)),
    }


# --------------------------------------------------------------------------------- training
def noisy(x, level: float, seed: int) -> np.ndarray:
    """``x`` with Gaussian noise of std ``level`` (clipped to [0, 1]); ``x`` itself at 0."""
    return x if level == 0 else fnn.datasets.gaussian_noise(x, level, rng=seed)


def train(model, x_train, x_test, *, epochs: int, seed: int = 0, noise: float = 0.0,
          snapshot: np.ndarray | None = None, params=None, progress: bool = True,
          lr: float = LR, batch_size: int = BATCH_SIZE, name: str = ""):
    """Train ``model`` to reproduce its (clean) input with BCE and Adam.

    With ``noise > 0`` it is a denoising autoencoder: every batch's input gets fresh Gaussian
    noise of std ``noise`` (drawn from ``fold_in(key(seed), step)``), the target stays clean;
    the test loss is measured on a fixed noisy copy of ``x_test``. ``snapshot``: images whose
    reconstructions are kept after every epoch (noised like the test set).

    Returns ``(params, history, snapshots)``; ``history.eval`` has ``loss`` (test BCE per
    image) and ``psnr`` (dB)."""
    n_in = x_train.shape[1]
    if params is None:
        params = init_params(model, n_in, seed)
    opt = fnn.adam(lr)
    inner = fnn.supervised_step(model, fnn.bce, opt)
    noise_key = fnn.fold_in(fnn.key(seed), 3)

    def step(state, batch):
        x, target = batch
        if noise > 0:
            x = fnn.datasets.gaussian_noise(x, noise, rng=fnn.rng(fnn.fold_in(noise_key,
                                                                              state.step)))
        return inner(state, (x, target))

    x_test_in = noisy(x_test, noise, seed + 1000)

    def eval_fn(state) -> dict:
        recon = fnn.predict(model, state.params, x_test_in)
        return {"loss": fnn.bce.value(recon, x_test), "psnr": psnr(x_test, recon)}

    snapshots = []
    snap_in = None if snapshot is None else noisy(snapshot, noise, seed + 2000)

    def keep(epoch, state, history):
        if snap_in is not None:
            snapshots.append(fnn.predict(model, state.params, snap_in))
        if not progress:
            print(f"  {name} epoch {epoch + 1}/{epochs}: train BCE {history.train['loss'][-1]:.2f}"
                  f"  test BCE {history.eval['loss'][-1]:.2f}  test PSNR "
                  f"{history.eval['psnr'][-1]:.2f} dB  ({history.seconds[-1]:.1f} s)", flush=True)

    state, history = fnn.train(
        step, fnn.batches(x_train, x_train, batch_size=batch_size, rng=fnn.fold_in(fnn.key(seed), 1)),
        fnn.TrainState.create(params, opt), epochs=epochs, eval_fn=eval_fn, callbacks=[keep],
        progress=progress,
    )
    return state.params, history, snapshots


def params_path(folder: Path, name: str, noise: float = 0.0) -> Path:
    return Path(folder) / (f"{name}.npz" if noise == 0 else f"{name}_noise{noise:g}.npz")


def load_or_train(name: str, x_train, x_test, *, from_dir: Path | None, epochs: int, seed: int,
                  noise: float = 0.0, progress: bool = True):
    """``(model, encoder, params, history_or_None)``: the architecture ``name`` loaded from
    ``from_dir/<name>.npz`` when that file exists (``history`` is then None), else trained
    here for ``epochs``."""
    n_in = x_train.shape[1]
    model, encoder, _ = build(ARCHITECTURES[name], n_in)
    template = init_params(model, n_in, seed)
    path = params_path(from_dir, name, noise) if from_dir is not None else None
    if path is not None and path.exists():
        print(f"{label(name, n_in)}: loading {path}", flush=True)
        return model, encoder, fnn.load(path, like=template), None
    why = f"{path} not found" if path is not None else "no --from given"
    print(f"{label(name, n_in)}: {why}; training {epochs} epochs", flush=True)
    params, history, _ = train(model, x_train, x_test, epochs=epochs, seed=seed, noise=noise,
                               params=template, progress=progress, name=label(name, n_in))
    return model, encoder, params, history


# --------------------------------------------------------------------------------- data
def fashion(quick: bool):
    """Fashion-MNIST as ``(x_train, y_train, x_test, y_test, class_names)``; the first 1000 /
    300 images in quick mode."""
    d = fnn.datasets.fashion_mnist()
    if quick:
        return (d.x_train[:QUICK_TRAIN], d.y_train[:QUICK_TRAIN], d.x_test[:QUICK_TEST],
                d.y_test[:QUICK_TEST], d.class_names)
    return d.x_train, d.y_train, d.x_test, d.y_test, d.class_names


@functools.lru_cache(maxsize=1)
def _fashion(quick: bool):
    """:func:`fashion`, loaded once per process (a Dask worker runs many trials)."""
    return fashion(quick)


def trial(config: dict, key: fnn.Key) -> dict:
    """One autoencoder of ``config["arch"]`` trained by :func:`train` for ``config["epochs"]``
    at noise ``config["noise"]`` (0: a plain autoencoder), seeded by ``config["seed"]`` as the
    scripts always were (the sweep's ``key`` is that seed's key: not needed); its history and
    trained params (as arrays). The trial of ``fnn.sweep`` in denoising.py."""
    x_train, _, x_test, _, _ = _fashion(config["quick"])
    model, _, _ = build(ARCHITECTURES[config["arch"]], x_train.shape[1])
    params, history, _ = train(model, x_train, x_test, epochs=config["epochs"],
                               seed=config["seed"], noise=config["noise"], progress=False,
                               name=f"{label(config['arch'])} @ {config['noise']:g}")
    return {"metrics": {"history": dataclasses.asdict(history),
                        "test_bce": history.eval["loss"][-1],
                        "test_psnr": history.eval["psnr"][-1]},
            "arrays": {"params": params}}


def epochs_for(args) -> int:
    return QUICK_EPOCHS if args.quick else args.epochs


class Timer:
    def __init__(self):
        self.t0 = time.time()

    def __str__(self) -> str:
        return f"{time.time() - self.t0:.0f} s"


# --------------------------------------------------------------------------------- figures
def latent_figure(codes: dict[str, np.ndarray], title: str | None = None) -> Figure:
    """Per model (columns): histogram of all code activations over the data set (top) and the
    mean |activation| of every code unit, sorted, with its standard deviation (bottom)."""
    fig = Figure(figsize=(4.2 * len(codes), 6.4), layout="constrained")
    axes = fig.subplots(2, len(codes), squeeze=False)
    for col, (name, z) in enumerate(codes.items()):
        top, bottom = axes[0, col], axes[1, col]
        top.hist(z.ravel(), bins=np.linspace(-1, 1, 41), color="tab:blue")
        top.set_title(name)
        top.set_xlabel("code activation (tanh)")
        top.set_ylabel("count")
        order = np.argsort(np.abs(z).mean(axis=0))[::-1]
        units = np.arange(len(order))
        bottom.bar(units, np.abs(z).mean(axis=0)[order], width=1.0, color="tab:orange",
                   label="mean |activation|")
        bottom.plot(units, z.std(axis=0)[order], "k.", ms=4, label="std over the data")
        bottom.legend(fontsize=7, loc="upper right")
        bottom.axhline(0.9, color="grey", ls=":", lw=0.8)
        bottom.axhline(0.05, color="grey", ls=":", lw=0.8)
        bottom.set_ylim(0, 1)
        bottom.set_xlabel("code unit (sorted)")
        bottom.set_ylabel("mean |activation|, std")
    if title:
        fig.suptitle(title)
    return fig
