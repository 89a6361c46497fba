"""Report 3.3.1: three fully connected autoencoders on Fashion-MNIST.

784-64, 784-256-64 and 784-512-256-128-64; tanh in the encoder (code layer included), mirrored
decoder with tanh hidden layers and a sigmoid output, BCE, Adam (lr 1e-3, batch 128), 30
epochs. Measures the final train/test BCE (nats per image and per pixel), the test PSNR, the
seconds per epoch and how the 64 tanh code units are used (saturated near +-1 / dead near 0).
Saves every model's params to ``<out>/<model>.npz`` for latent_tsne.py and denoising.py.

    python examples/fashion_autoencoders.py [--epochs 30] [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import fnn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
import autoencoder_common as ae  # noqa: E402
import common  # noqa: E402

NAME = "fashion_autoencoders"
NEEDS_REAL_DATA = True


def main(argv=None) -> dict:
    t0 = time.time()
    p = common.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=ae.EPOCHS)
    args = p.parse_args(argv)
    out = common.out_dir(NAME, args)
    epochs = ae.epochs_for(args)
    x_train, _, x_test, _, _ = ae.fashion(args.quick)
    print(f"{NAME}: {len(x_train)} train / {len(x_test)} test images, {epochs} epochs, "
          f"Adam lr {ae.LR}, batch {ae.BATCH_SIZE}, BCE", flush=True)
    snap = x_test[:ae.SNAPSHOT_IMAGES]
    shown = x_test[:10]

    metrics, rows, histories, recon_rows, codes = {}, [], {}, {"original": shown}, {}
    for name, hidden in ae.ARCHITECTURES.items():
        lab = ae.label(name)
        print(f"training {lab}", flush=True)
        model, encoder, _ = ae.build(hidden, x_train.shape[1])
        params, history, snapshots = ae.train(model, x_train, x_test, epochs=epochs,
                                              seed=args.seed, snapshot=snap,
                                              progress=args.progress, name=lab)
        fnn.save(out / f"{name}.npz", params)
        train_m = ae.reconstruction_metrics(model, params, x_train, x_train)
        test_m = ae.reconstruction_metrics(model, params, x_test, x_test)
        z = ae.encode(encoder, params, x_test)
        stats = ae.latent_stats(z)
        metrics[name] = {
            "architecture": lab, "params": fnn.tree_size(params),
            "train": train_m, "test": test_m,
            "train_bce_epoch_mean_last": history.train["loss"][-1],
            "test_bce_curve": history.eval["loss"], "train_bce_curve": history.train["loss"],
            "seconds_per_epoch": float(np.mean(history.seconds)), "latent": stats,
        }
        histories[lab] = history
        recon_rows[lab] = fnn.predict(model, params, shown)
        codes[lab] = z
        shown_epochs = sorted({e for e in (1, 2, 3, 5, 10, 15, 20, 25) if e < len(snapshots)}
                              | {len(snapshots)})
        common.save(fnn.plot.reconstruction_strip(
            [snapshots[e - 1] for e in shown_epochs], epochs=shown_epochs, original=snap,
            image_shape=(28, 28),
            title=f"{lab}: test reconstructions after each epoch"), out, f"epochs_{name}.png")
        print(f"{lab}: train BCE {train_m['bce_per_image']:.2f} nats/image "
              f"({train_m['bce_per_pixel']:.4f}/pixel), test BCE {test_m['bce_per_image']:.2f} "
              f"({test_m['bce_per_pixel']:.4f}/pixel), test PSNR {test_m['psnr_db']:.2f} dB, "
              f"{metrics[name]['seconds_per_epoch']:.1f} s/epoch, code units saturated "
              f"{stats['units_saturated']}/64, dead {stats['units_dead']}/64, constant (std < 0.05) "
              f"{stats['units_constant']}/64", flush=True)
        rows += [
            {"what": f"{lab}: train / test BCE (nats per image)",
             "measured": f"{train_m['bce_per_image']:.2f} / {test_m['bce_per_image']:.2f}",
             "report": ""},
            {"what": f"{lab}: train / test BCE (nats per pixel)",
             "measured": f"{train_m['bce_per_pixel']:.4f} / {test_m['bce_per_pixel']:.4f}",
             "report": ""},
            {"what": f"{lab}: test PSNR (dB)", "measured": f"{test_m['psnr_db']:.2f}", "report": ""},
            {"what": f"{lab}: seconds per epoch", "measured": f"{metrics[name]['seconds_per_epoch']:.1f}",
             "report": ""},
            {"what": f"{lab}: code units saturated (mean abs > 0.9) / dead (mean abs < 0.05) / "
                     "constant (std < 0.05) of 64; activations with abs > 0.95",
             "measured": f"{stats['units_saturated']} / {stats['units_dead']} / "
                         f"{stats['units_constant']}; "
                         f"{stats['fraction_activations_above_0.95']:.1%}", "report": ""},
        ]

    common.save(fnn.plot.curves_overlay(
        histories, "loss", section="both",
        title=f"BCE (nats per image), Adam lr {ae.LR}, batch {ae.BATCH_SIZE}"), out, "bce_curves.png")
    common.save(fnn.plot.image_rows(recon_rows, image_shape=(28, 28),
                                    title="10 test images and their reconstructions"),
                out, "reconstructions.png")
    common.save(ae.latent_figure(codes, title="64 tanh code units over the test set"),
                out, "latent_activations.png")
    metrics["settings"] = {"epochs": epochs, "lr": ae.LR, "batch_size": ae.BATCH_SIZE,
                           "loss": "bce, nats per image (per pixel = /784)",
                           "n_train": len(x_train), "n_test": len(x_test)}
    common.write_results(NAME, out, args, metrics, rows=rows, started=t0)
    return {**metrics, "out": str(out)}


if __name__ == "__main__":
    main()
