"""Report 3.3.3: denoising autoencoders on Fashion-MNIST (Gaussian noise).

The three architectures of fashion_autoencoders.py (784-64, 784-256-64, 784-512-256-128-64;
tanh, mirrored decoder, sigmoid output, BCE, Adam lr 1e-3, batch 128) are trained as denoising
autoencoders: input = clean image + fresh Gaussian noise of std 0.2 (clipped to [0, 1]) for
every batch, target = the clean image, 30 epochs. Each is tested at noise levels 0.0 ... 0.5 by
the PSNR of its output against the clean image (dB, peak 1, mean over the 10000 test images),
beside the PSNR of the noisy input itself and of the plain (noise-free trained) autoencoders.
Then the best of the three is trained again at each training noise level 0.1 ... 0.5 (15
epochs each, fewer than 30 to fit the time budget) and tested at every level.

The trainings are two ``fnn.sweep`` s (trial ``autoencoder_common.trial``): the three DAEs and
the plain autoencoders not found in ``--from``, then the best one at every training noise
level; on Dask workers or in-process (``--workers``, ``--scheduler``), finished trainings kept
in ``<out>/trials`` (a crash no longer loses them: the rerun only trains what is missing).

    python examples/denoising.py --from results/fashion_autoencoders   # plain AEs reused
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

NAME = "denoising"
NEEDS_REAL_DATA = True
TEST_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
TRAIN_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5)


def fmt_db(v) -> str:
    return "∞" if v is None else f"{v:.2f}"


def psnr_row(model, params, noisy_sets: dict, x_clean) -> list:
    return [ae.psnr(x_clean, fnn.predict(model, params, xn)) for xn in noisy_sets.values()]


def main(argv=None) -> dict:
    t0 = time.time()
    p = common.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=ae.EPOCHS,
                   help="epochs of the three denoising autoencoders (and of plain ones trained "
                        "here when --from has none)")
    p.add_argument("--level-epochs", type=int, default=15,
                   help="epochs of the best architecture at each training noise level")
    p.add_argument("--noise", type=float, default=0.2, help="training noise std of the three")
    p.add_argument("--from", dest="from_dir", type=Path, default=None,
                   help="folder with fashion_autoencoders' <model>.npz (plain autoencoders, the "
                        "baseline); without it, or when a file is missing, they are trained here")
    common.add_sweep_arguments(p)
    args = p.parse_args(argv)
    out = common.out_dir(NAME, args)
    epochs = ae.epochs_for(args)
    level_epochs = 1 if args.quick else args.level_epochs
    x_train, _, x_test, _, _ = ae.fashion(args.quick)
    print(f"{NAME}: {len(x_train)} train / {len(x_test)} test images; DAEs at noise "
          f"{args.noise:g} for {epochs} epochs, best one at {TRAIN_LEVELS} for {level_epochs} "
          f"epochs each", flush=True)
    noisy_sets = {lv: ae.noisy(x_test, lv, args.seed + 100 + i) for i, lv in enumerate(TEST_LEVELS)}
    baseline = [ae.psnr(x_test, xn) for xn in noisy_sets.values()]
    shown = slice(0, 4 if args.quick else 10)  # figures with many panels are slow to draw

    def config(arch: str, noise: float, n_epochs: int) -> dict:
        return {"arch": arch, "noise": noise, "epochs": n_epochs, "quick": bool(args.quick),
                "seed": args.seed}

    def report(record: dict) -> str:
        c, m = record["config"], record["metrics"]
        return (f"{ae.label(c['arch'])} trained at noise {c['noise']:g}, {c['epochs']} epochs: "
                f"test BCE {m['test_bce']:.2f}, test PSNR {fmt_db(m['test_psnr'])} dB")

    # the three DAEs and the plain autoencoders that --from does not have, as one sweep
    plain_loaded = {}
    for name in ae.ARCHITECTURES:
        path = ae.params_path(args.from_dir, name) if args.from_dir is not None else None
        if path is not None and path.exists():
            model, _, _ = ae.build(ae.ARCHITECTURES[name], x_train.shape[1])
            print(f"{ae.label(name)}: loading {path}", flush=True)
            plain_loaded[name] = fnn.load(path, like=ae.init_params(model, x_train.shape[1],
                                                                    args.seed))
    configs = [config(n, args.noise, epochs) for n in ae.ARCHITECTURES]
    configs += [config(n, 0.0, epochs) for n in ae.ARCHITECTURES if n not in plain_loaded]
    first = common.sweep(NAME, ae.trial, configs, args, out, report=report)
    trained = {(r["config"]["arch"], r["config"]["noise"]): r for r in first.records}

    table = {"noisy input": baseline}
    dae, histories, models = {}, {}, {}
    for name in ae.ARCHITECTURES:
        lab = ae.label(name)
        model, _, _ = ae.build(ae.ARCHITECTURES[name], x_train.shape[1])
        record = trained[name, args.noise]
        params = first.arrays(record)["params"]
        history = fnn.History(**record["metrics"]["history"])
        if not args.quick:
            fnn.save(ae.params_path(out, name, args.noise), params)
        dae[name], histories[f"DAE {lab}"], models[name] = params, history, model
        table[f"DAE {lab}"] = psnr_row(model, params, noisy_sets, x_test)
        print(f"DAE {lab}: PSNR " + ", ".join(f"{lv:g}: {fmt_db(v)}" for lv, v in
                                              zip(TEST_LEVELS, table[f'DAE {lab}'])), flush=True)
    for name in ae.ARCHITECTURES:
        params = plain_loaded.get(name)
        if params is None:
            params = first.arrays(trained[name, 0.0])["params"]
        table[f"plain AE {ae.label(name)}"] = psnr_row(models[name], params, noisy_sets, x_test)
    at_train = TEST_LEVELS.index(args.noise) if args.noise in TEST_LEVELS else 2
    best = max(ae.ARCHITECTURES, key=lambda n: table[f"DAE {ae.label(n)}"][at_train])
    best_lab = ae.label(best)
    print(f"best at noise {TEST_LEVELS[at_train]:g}: {best_lab}", flush=True)
    # the best architecture trained at increasing noise levels: the second sweep
    second = common.sweep(NAME, ae.trial, [config(best, lv, level_epochs) for lv in TRAIN_LEVELS],
                          args, out, report=report)
    by_level = {r["config"]["noise"]: second.arrays(r)["params"] for r in second.records}

    for lv, xn in noisy_sets.items():
        rows = {"original": x_test[shown], f"noisy {lv:g}": xn[shown]}
        rows.update({f"DAE {ae.label(n)}": fnn.predict(models[n], dae[n], xn[shown])
                     for n in ae.ARCHITECTURES})
        common.save(fnn.plot.image_rows(
            rows, image_shape=(28, 28),
            title=f"test noise {lv:g}: DAEs trained at noise {args.noise:g}"),
            out, f"denoised_noise{lv:g}.png")

    # the best architecture trained at increasing noise levels
    levels_table, increasing = {}, {"original": x_test[shown]}
    for lv in TRAIN_LEVELS:
        model, params = models[best], by_level[lv]
        levels_table[f"trained at {lv:g}"] = psnr_row(model, params, noisy_sets, x_test)
        xn = noisy_sets[lv][shown] if lv in noisy_sets else ae.noisy(x_test[shown], lv, 7)
        increasing[f"noisy {lv:g}"] = xn
        increasing[f"denoised ({lv:g})"] = fnn.predict(model, params, xn)

    dae_labels = [f"DAE {ae.label(n)}" for n in ae.ARCHITECTURES]
    common.save(fnn.plot.curves_overlay(
        histories, "loss", section="both",
        title=f"denoising AEs at noise {args.noise:g}: BCE (nats per image) vs clean"),
        out, "bce_curves.png")
    groups = [f"{lv:g}" for lv in TEST_LEVELS[1:]]  # noise 0: the noisy input's PSNR is infinite
    bars = {k: table[k][1:] for k in ["noisy input", *dae_labels, f"plain AE {best_lab}"]}
    common.save(fnn.plot.grouped_bars(
        groups, bars, xlabel="test noise std (Gaussian)", ylabel="test PSNR (dB)", fmt="{:.1f}",
        title=f"test PSNR vs test noise std (DAEs trained at {args.noise:g})"),
        out, "psnr_bars.png")
    common.save(fnn.plot.sweep(
        list(TEST_LEVELS[1:]), {k: v[1:] for k, v in table.items()}, xlabel="test noise std",
        ylabel="PSNR (dB)", title="PSNR of the output vs the clean image"),
        out, "psnr_vs_noise.png")
    common.save(fnn.plot.sweep(
        list(TEST_LEVELS[1:]), {"noisy input": baseline[1:],
                                **{k: v[1:] for k, v in levels_table.items()}},
        xlabel="test noise std", ylabel="PSNR (dB)",
        title=f"DAE {best_lab} trained at increasing noise ({level_epochs} epochs)"),
        out, "psnr_training_levels.png")
    common.save(fnn.plot.image_rows(
        increasing, image_shape=(28, 28),
        title=f"DAE {best_lab}, trained and tested at increasing noise"),
        out, "increasing_noise.png")

    level_names = [f"{lv:g}" for lv in TEST_LEVELS]
    rows = [{"what": f"{k}: test PSNR (dB) at noise " + " / ".join(level_names),
             "measured": " / ".join(fmt_db(v) for v in vals), "report": ""}
            for k, vals in table.items()]
    rows += [{"what": f"DAE {best_lab} {k} ({level_epochs} epochs): test PSNR (dB) at noise "
              + " / ".join(level_names),
              "measured": " / ".join(fmt_db(v) for v in vals), "report": ""}
             for k, vals in levels_table.items()]
    metrics = {
        "test_levels": list(TEST_LEVELS),
        "psnr_db": {k: dict(zip(level_names, v)) for k, v in table.items()},
        "psnr_db_best_by_training_level": {k: dict(zip(level_names, v))
                                           for k, v in levels_table.items()},
        "best": best_lab,
        "test_bce_per_image_final": {k: h.eval["loss"][-1] for k, h in histories.items()},
        "seconds_per_epoch": {k: float(np.mean(h.seconds)) for k, h in histories.items()},
        "settings": {"epochs": epochs, "level_epochs": level_epochs, "train_noise": args.noise,
                     "noise": "gaussian, std = level, clipped to [0, 1]; fresh per batch",
                     "lr": ae.LR, "batch_size": ae.BATCH_SIZE, "n_train": len(x_train),
                     "n_test": len(x_test), "plain_from": str(args.from_dir),
                     "psnr": "mean over images of 10 log10(1 / MSE), clean target, peak 1; "
                             "None (infinite) for the noisy input at level 0"},
    }
    common.write_results(NAME, out, args, metrics, rows=rows, started=t0,
                         sweeps=[first, second])
    return {**metrics, "out": str(out)}


if __name__ == "__main__":
    main()
