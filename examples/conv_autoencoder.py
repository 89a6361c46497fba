"""Beyond the report: a 2-D convolutional autoencoder on Fashion-MNIST, against the best dense one.

Same budget and code size as section 3.3's dense autoencoders: a 64-d tanh code, BCE (nats per
image), Adam (lr 1e-3, batch 128), 30 epochs, trained and measured with the same functions
(``autoencoder_common.train`` / ``reconstruction_metrics`` / ``psnr``). Channels-last:

    encoder  28x28x1 -> conv2d(32, 3, stride 2, same) -> relu       14x14x32
                     -> conv2d(64, 3, stride 2, same) -> relu        7x7x64
                     -> flatten -> linear(64) -> tanh                64  (the code)
    decoder  64 -> linear(7*7*64) -> relu -> reshape                 7x7x64
                -> conv_transpose2d(32, 3, stride 2, padding 1, output_padding 1) -> relu  14x14x32
                -> conv_transpose2d(1, 3, stride 2, padding 1, output_padding 1) -> sigmoid 28x28x1

The model reads and writes flat (N, 784) images (a reshape at the encoder's input, a flatten at
the decoder's output), so the dense autoencoders' training loop and metrics apply unchanged.
Strided convolutions rather than conv + max-pool: in a 3-epoch probe conv(32)-pool-conv(64,
stride 2) reached the same test BCE (213.2 vs 212.7) at 1.5x the time per epoch, and
conv(16)-pool-conv(32)-pool was worse (218.8).

The dense baseline is read at run time from ``<dense-dir>/results.json`` and its params from
``<dense-dir>/<model>.npz`` (``results/fashion_autoencoders/`` by default, written by
``fashion_autoencoders.py``); when they are missing the script says so and compares nothing.

    python examples/conv_autoencoder.py [--epochs 30] [--dense-dir DIR] [--quick]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import fnn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
import autoencoder_common as ae  # noqa: E402
import common  # noqa: E402

NAME = "conv_autoencoder"
NEEDS_REAL_DATA = True
DENSE = "fashion_autoencoders"
IMAGE = (28, 28, 1)
CODE = 64
CHANNELS = (32, 64)
LABEL = f"conv AE ({CODE}-d code)"
ARCHITECTURE = ("28x28x1 -conv(32,3,s2)-> 14x14x32 -conv(64,3,s2)-> 7x7x64 -linear-> 64 (tanh) "
                "-linear-> 7x7x64 -convT(32,3,s2)-> 14x14x32 -convT(1,3,s2)-> 28x28x1 (sigmoid)")
UP = dict(stride=2, padding=1, output_padding=1)  # doubles H and W: 7 -> 14 -> 28


def build(code: int = CODE, channels: tuple[int, int] = CHANNELS) \
        -> tuple[fnn.Layer, fnn.Layer, fnn.Layer]:
    """``(model, encoder, decoder)`` laid out like ``autoencoder_common.build`` (encoder at
    ``params["00_serial"]``): flat ``(N, 784)`` images -> ``(N, code)`` tanh code -> ``(N, 784)``
    probabilities."""
    c1, c2 = channels
    side = IMAGE[0] // 4

    def conv(c: int) -> fnn.Layer:
        return fnn.conv2d(c, 3, stride=2, padding="same", bias=True, w_init="he_normal")

    encoder = fnn.serial(
        fnn.reshape(IMAGE), conv(c1), fnn.relu(), conv(c2), fnn.relu(),
        fnn.flatten(), fnn.linear(code), fnn.tanh())
    decoder = fnn.serial(
        fnn.linear(side * side * c2, w_init="he_normal"), fnn.relu(), fnn.reshape((side, side, c2)),
        fnn.conv_transpose2d(c1, 3, bias=True, w_init="he_normal", **UP), fnn.relu(),
        fnn.conv_transpose2d(IMAGE[-1], 3, bias=True, **UP), fnn.sigmoid(), fnn.flatten())
    return fnn.serial(encoder, decoder), encoder, decoder


def dense_baseline(folder: Path, seed: int) -> dict | None:
    """The best dense autoencoder (lowest test BCE) of ``folder/results.json``: its name, label,
    metrics, history and, when ``folder/<name>.npz`` loads, its model and params; None (with
    the reason printed) when the results are missing."""
    path = folder / "results.json"
    if not path.exists():
        print(f"dense baseline: {path} is missing; no comparison (run "
              f"examples/{DENSE}.py first)", flush=True)
        return None
    metrics = json.loads(path.read_text())["metrics"]
    models = {k: v for k, v in metrics.items() if k in ae.ARCHITECTURES and "test" in v}
    if not models:
        print(f"dense baseline: no autoencoder metrics in {path}; no comparison", flush=True)
        return None
    name = min(models, key=lambda k: models[k]["test"]["bce_per_image"])
    m = models[name]
    out = {"name": name, "label": f"dense {ae.label(name)}", "metrics": m, "source": str(path),
           "history": fnn.History(train={"loss": m["train_bce_curve"]},
                                  eval={"loss": m["test_bce_curve"]}),
           "all_test": {ae.label(k): v["test"] for k, v in models.items()}}
    npz = ae.params_path(folder, name)
    model, encoder, _ = ae.build(ae.ARCHITECTURES[name], int(np.prod(IMAGE)))
    try:
        out["params"] = fnn.load(npz, like=ae.init_params(model, int(np.prod(IMAGE)), seed))
        out["model"], out["encoder"] = model, encoder
    except (FileNotFoundError, fnn.FnnFileError) as err:
        print(f"dense baseline: cannot load {npz} ({err}); no dense reconstructions", flush=True)
    return out


def fmt_pair(train: float, test: float) -> str:
    return f"{train:.2f} / {test:.2f}"


@common.one_blas_thread
def main(argv=None) -> dict:
    t0 = time.time()
    p = common.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=ae.EPOCHS)
    p.add_argument("--lr", type=float, default=ae.LR)
    p.add_argument("--batch-size", type=int, default=ae.BATCH_SIZE)
    p.add_argument("--dense-dir", type=Path, default=None,
                   help=f"where {DENSE}.py wrote results.json and the .npz params (default "
                        f"results/{DENSE}, results/quick/{DENSE} with --quick)")
    args = p.parse_args(argv)
    out = common.out_dir(NAME, args)
    dense_dir = args.dense_dir or (common.RESULTS / "quick" / DENSE if args.quick
                                   else common.RESULTS / DENSE)
    epochs = ae.epochs_for(args)
    x_train, _, x_test, _, _ = ae.fashion(args.quick)
    print(f"{NAME}: {len(x_train)} train / {len(x_test)} test images, {epochs} epochs, Adam lr "
          f"{args.lr}, batch {args.batch_size}, BCE", flush=True)

    model, encoder, _ = build()
    params, history, snapshots = ae.train(
        model, x_train, x_test, epochs=epochs, seed=args.seed, snapshot=x_test[:ae.SNAPSHOT_IMAGES],
        progress=args.progress, lr=args.lr, batch_size=args.batch_size, name=LABEL)
    fnn.save(out / "conv_ae.npz", params)
    train_m = ae.reconstruction_metrics(model, params, x_train, x_train)
    test_m = ae.reconstruction_metrics(model, params, x_test, x_test)
    z = ae.encode(encoder, params, x_test)
    spe = float(np.mean(history.seconds))
    conv = {"architecture": ARCHITECTURE, "code_size": CODE,
            "params": fnn.tree_size(params), "train": train_m, "test": test_m,
            "train_bce_curve": history.train["loss"], "test_bce_curve": history.eval["loss"],
            "test_psnr_curve": history.eval["psnr"], "seconds_per_epoch": spe,
            "latent": ae.latent_stats(z)}
    print(f"{LABEL}: train BCE {train_m['bce_per_image']:.2f}, test BCE "
          f"{test_m['bce_per_image']:.2f} nats/image, test PSNR {test_m['psnr_db']:.2f} dB, "
          f"{conv['params']} params, {spe:.1f} s/epoch", flush=True)

    dense = dense_baseline(dense_dir, args.seed)
    metrics = {"conv_ae": conv, "dense_best": None}
    if dense is not None:
        dm = dense["metrics"]
        metrics["dense_best"] = {
            "name": dense["name"], "architecture": ae.label(dense["name"]), "source": dense["source"],
            "code_size": ae.ARCHITECTURES[dense["name"]][-1], "params": dm["params"],
            "train": dm["train"], "test": dm["test"], "seconds_per_epoch": dm["seconds_per_epoch"],
            "all_dense_test": dense["all_test"]}
        if "params" in dense:  # the saved params measured here, on this run's test images
            metrics["dense_best"]["test_recomputed"] = ae.reconstruction_metrics(
                dense["model"], dense["params"], x_test, x_test)
        d_bce, d_psnr = dm["test"]["bce_per_image"], dm["test"]["psnr_db"]
        metrics["beats_dense"] = {"test_bce": test_m["bce_per_image"] < d_bce,
                                  "test_psnr": test_m["psnr_db"] > d_psnr}
        print(f"{dense['label']} (best dense, {dense['source']}): test BCE {d_bce:.2f}, PSNR "
              f"{d_psnr:.2f} dB -> conv AE {test_m['bce_per_image'] - d_bce:+.2f} nats/image, "
              f"{test_m['psnr_db'] - d_psnr:+.2f} dB", flush=True)

    def beside(fn) -> str:
        return fn(dense) if dense is not None else "dense results missing"

    rows = [
        {"what": f"{LABEL}: train / test BCE (nats per image)",
         "measured": fmt_pair(train_m["bce_per_image"], test_m["bce_per_image"]),
         "report": beside(lambda d: f"{d['label']}: " + fmt_pair(
             d["metrics"]["train"]["bce_per_image"], d["metrics"]["test"]["bce_per_image"]))},
        {"what": f"{LABEL}: test PSNR (dB)", "measured": f"{test_m['psnr_db']:.2f}",
         "report": beside(lambda d: f"{d['label']}: {d['metrics']['test']['psnr_db']:.2f}")},
        {"what": f"{LABEL}: code size / params", "measured": f"{CODE} / {conv['params']:,}",
         "report": beside(lambda d: f"{d['label']}: {ae.ARCHITECTURES[d['name']][-1]} / "
                                    f"{d['metrics']['params']:,}")},
        {"what": f"{LABEL}: seconds per epoch", "measured": f"{spe:.1f}",
         "report": beside(lambda d: f"{d['label']}: {d['metrics']['seconds_per_epoch']:.1f}")},
    ]

    # ----------------------------------------------------------------------------- figures
    histories = {LABEL: history}
    if dense is not None:
        histories[dense["label"]] = dense["history"]
    common.save(fnn.plot.curves_overlay(
        histories, "loss", section="both",
        title=f"BCE, nats per image (solid: train, dashed: test)\nAdam lr {args.lr}, batch "
              f"{args.batch_size}, 64-d code"), out, "bce_curves.png")
    shown = x_test[:10]
    recon_rows = {"original": shown}
    codes = {LABEL: z}
    if dense is not None and "params" in dense:
        recon_rows[dense["label"]] = fnn.predict(dense["model"], dense["params"], shown)
        codes[dense["label"]] = ae.encode(dense["encoder"], dense["params"], x_test)
    recon_rows[LABEL] = fnn.predict(model, params, shown)
    common.save(fnn.plot.image_rows(recon_rows, image_shape=IMAGE[:2],
                                    title="10 test images and their reconstructions"),
                out, "reconstructions.png")
    shown_epochs = sorted({e for e in (1, 2, 3, 5, 10, 15, 20, 25) if e < len(snapshots)}
                          | {len(snapshots)})
    common.save(fnn.plot.reconstruction_strip(
        [snapshots[e - 1] for e in shown_epochs], epochs=shown_epochs,
        original=x_test[:ae.SNAPSHOT_IMAGES], image_shape=IMAGE[:2],
        title=f"{LABEL}: test reconstructions after each epoch"), out, "epochs_conv_ae.png")
    kernel = params["00_serial"]["01_conv2d"]["w"]
    common.save(fnn.plot.filters(kernel, title=f"first-layer filters {kernel.shape} (3x3, "
                                                f"stride 2)"), out, "filters.png")
    common.save(ae.latent_figure(codes, title=f"{CODE} tanh code units over the test set"),
                out, "latent_activations.png")

    metrics["settings"] = {"epochs": epochs, "lr": args.lr, "batch_size": args.batch_size,
                           "loss": "bce, nats per image (per pixel = /784)",
                           "n_train": len(x_train), "n_test": len(x_test),
                           "dense_dir": str(dense_dir)}
    common.write_results(NAME, out, args, metrics, rows=rows, started=t0)
    return {**metrics, "out": str(out)}


if __name__ == "__main__":
    main()
