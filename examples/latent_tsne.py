"""Report 3.3.2: t-SNE maps of the 64-d autoencoder code, Fashion-MNIST and USPS.

The deepest autoencoder (784-512-256-128-64 on Fashion-MNIST; the same shape 256-512-256-128-64
trained here on USPS, 30 epochs, BCE, Adam lr 1e-3, batch 128) encodes a seeded subset of up to
3000 test images; t-SNE maps the 64-d codes and, for comparison, the raw pixels to 2-D.
Each map is scored by 5-nearest-neighbour classification accuracy (5-fold cross-validation
over the same points) in the 64-d code, in the pixels and in both 2-D t-SNE maps.

    python examples/latent_tsne.py --from results/fashion_autoencoders   # reuse the trained AE
    python examples/latent_tsne.py                                       # train it here too
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

NAME = "latent_tsne"
NEEDS_REAL_DATA = True
POINTS, QUICK_POINTS = 3000, 300


def knn_accuracy(x, y, *, k: int = 5, folds: int = 5, seed: int = 0) -> dict:
    """k-NN classification accuracy, stratified ``folds``-fold cross-validation."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    scores = cross_val_score(KNeighborsClassifier(n_neighbors=k), x, y,
                             cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return {"mean": float(scores.mean()), "std": float(scores.std(ddof=1)),
            "folds": scores.tolist()}


def study(dataset: str, encoder, params, x, y, class_names, *, n_points: int, seed: int,
          out: Path) -> tuple[dict, list[dict]]:
    """Codes, t-SNE maps (code and pixels), figures, kNN scores of one data set."""
    idx = np.sort(np.random.default_rng(seed).choice(len(x), min(n_points, len(x)), replace=False))
    x, y = x[idx], y[idx]
    z = ae.encode(encoder, params, x)
    spaces = {}
    for what, data in (("code", z), ("pixels", x)):
        t = time.time()
        e = fnn.plot.embed_2d(data, method="tsne", seed=seed)
        print(f"{dataset}: t-SNE of the {data.shape[1]}-d {what} of {len(x)} test images "
              f"({time.time() - t:.0f} s)", flush=True)
        title = (f"{dataset}: t-SNE of the 64-d autoencoder code" if what == "code"
                 else f"{dataset}: t-SNE of the raw pixels ({data.shape[1]}-d)")
        # the 2-D map is computed once above (it is scored too), so latent_map draws it as is
        fig = fnn.plot.latent_map(e, y, class_names=class_names, max_points=None,
                                  title=f"{title}\n{len(x)} test images")
        fig.axes[0].set_xlabel("t-SNE 1")
        fig.axes[0].set_ylabel("t-SNE 2")
        common.save(fig, out, f"tsne_{what}_{dataset.lower().replace('-', '_')}.png")
        spaces[f"{what} ({data.shape[1]}-d)"] = data
        spaces[f"{what} t-SNE (2-d)"] = e
    scores = {space: knn_accuracy(data, y, seed=seed) for space, data in spaces.items()}
    rows = []
    for space, s in scores.items():
        print(f"{dataset}: 5-NN accuracy in the {space}: {s['mean']:.3f} +- {s['std']:.3f}",
              flush=True)
        rows.append({"what": f"{dataset}: 5-NN accuracy (5-fold CV) in the {space}",
                     "measured": f"{s['mean']:.3f} ± {s['std']:.3f}", "report": ""})
    metrics = {"points": len(x), "knn5": scores, "latent": ae.latent_stats(z)}
    return metrics, rows


def main(argv=None) -> dict:
    t0 = time.time()
    p = common.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=ae.EPOCHS,
                   help="epochs for the autoencoders trained here")
    p.add_argument("--from", dest="from_dir", type=Path, default=None,
                   help="folder with fashion_autoencoders' <model>.npz (e.g. "
                        "results/fashion_autoencoders); without it, or when the file is "
                        "missing, the Fashion-MNIST autoencoder is trained here")
    p.add_argument("--model", choices=sorted(ae.ARCHITECTURES), default=ae.DEEPEST,
                   help="which architecture to map (default: the deepest)")
    args = p.parse_args(argv)
    out = common.out_dir(NAME, args)
    epochs = ae.epochs_for(args)
    n_points = QUICK_POINTS if args.quick else POINTS
    metrics, rows = {}, []

    x_train, _, x_test, y_test, names = ae.fashion(args.quick)
    _, encoder, params, history = ae.load_or_train(
        args.model, x_train, x_test, from_dir=args.from_dir, epochs=epochs, seed=args.seed,
        progress=args.progress)
    metrics["fashion_mnist"], r = study("Fashion-MNIST", encoder, params, x_test, y_test, names,
                                        n_points=n_points, seed=args.seed, out=out)
    metrics["fashion_mnist"]["autoencoder"] = {
        "architecture": ae.label(args.model, 784),
        "source": "trained here" if history is not None else str(args.from_dir)}
    rows += r

    u = fnn.datasets.usps()
    ux, uy, uxt, uyt = u.x_train, u.y_train, u.x_test, u.y_test
    if args.quick:
        ux, uy, uxt, uyt = ux[:ae.QUICK_TRAIN], uy[:ae.QUICK_TRAIN], uxt[:ae.QUICK_TEST], \
            uyt[:ae.QUICK_TEST]
    lab = ae.label(args.model, ux.shape[1])
    print(f"USPS: training {lab}, {epochs} epochs on {len(ux)} images", flush=True)
    model, encoder, _ = ae.build(ae.ARCHITECTURES[args.model], ux.shape[1])
    params, history, _ = ae.train(model, ux, uxt, epochs=epochs, seed=args.seed,
                                  progress=args.progress, name=f"USPS {lab}")
    if not args.quick:
        fnn.save(out / f"usps_{args.model}.npz", params)
    test_m = ae.reconstruction_metrics(model, params, uxt, uxt)
    print(f"USPS {lab}: test BCE {test_m['bce_per_image']:.2f} nats/image "
          f"({test_m['bce_per_pixel']:.4f}/pixel), PSNR {test_m['psnr_db']:.2f} dB", flush=True)
    metrics["usps"], r = study("USPS", encoder, params, uxt, uyt, u.class_names,
                               n_points=n_points, seed=args.seed, out=out)
    metrics["usps"]["autoencoder"] = {"architecture": lab, "epochs": epochs, "test": test_m,
                                      "test_bce_curve": history.eval["loss"]}
    rows += r
    rows.append({"what": f"USPS {lab}: test BCE nats per image / per pixel; PSNR (dB)",
                 "measured": f"{test_m['bce_per_image']:.2f} / {test_m['bce_per_pixel']:.4f}; "
                             f"{test_m['psnr_db']:.2f}", "report": ""})
    common.save(fnn.plot.image_rows(
        {"original": uxt[:10], "reconstruction": fnn.predict(model, params, uxt[:10])},
        image_shape=(16, 16), title=f"USPS {lab}: test reconstructions"),
        out, "usps_reconstructions.png")
    metrics["settings"] = {"epochs": epochs, "lr": ae.LR, "batch_size": ae.BATCH_SIZE,
                           "knn": "k=5, stratified 5-fold CV on the mapped points",
                           "tsne": "sklearn TSNE, perplexity 30, init pca"}
    common.write_results(NAME, out, args, metrics, rows=rows, started=t0)
    return {**metrics, "out": str(out)}


if __name__ == "__main__":
    main()
