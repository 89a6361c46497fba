"""Every reproduction of the report, in order, then RESULTS.md (``make reproduce``).

    python examples/reproduce.py [--quick] [--workers N | --scheduler ADDRESS] [--only a,b]
                                 [--fresh] [--no-results]

Runs each script of :data:`ORDER` as its own process (``python examples/<name>.py
--no-progress ...``, so each results.json records its command). The scripts whose experiments
are grids of runs (:data:`SWEEPS`) run them with ``fnn.sweep``: each on a Dask LocalCluster of
``--workers`` processes (default one per core; in-process in ``--quick`` mode unless
``--workers`` is given) that it starts and stops, or on an existing cluster given by
``--scheduler`` (an address or a scheduler JSON file); ``--workers 1`` runs everything
in-process. Their finished runs are kept in ``results/<name>/trials``: after a
crash, rerun the same command and only the missing runs are done (``--fresh`` starts over).
The other scripts train one model after another (each on both cores with ``threads=2`` where
it helps). The autoencoder scripts after ``fashion_autoencoders`` reuse its trained models
(``--from results/fashion_autoencoders``). Finally ``examples/make_results.py`` regenerates
RESULTS.md from the full runs' results.json (not in ``--quick`` mode, whose results go to
``results/quick/`` and are never tabled).

A full run takes about an hour and a half on 2 cores (char_lm, the language models, about
20-40 minutes of it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ORDER = ("init_schemes", "learning_rate", "activations", "usps_conv1d", "usps_conv1d_sweeps",
         "fashion_autoencoders", "latent_tsne", "denoising", "conv_autoencoder",
         "fashion_classifier", "usps_bn_cnn", "char_lm")
SWEEPS = ("init_schemes", "learning_rate", "activations", "usps_conv1d", "usps_conv1d_sweeps",
          "denoising")
FROM_AUTOENCODERS = ("latent_tsne", "denoising")  # reuse fashion_autoencoders' models


def command(name: str, args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, f"examples/{name}.py", "--no-progress"]
    if args.quick:
        cmd.append("--quick")
    if name in FROM_AUTOENCODERS:
        results = Path(os.environ.get("FNN_RESULTS", ROOT / "results")).resolve()
        folder = results / ("quick" if args.quick else "") / "fashion_autoencoders"
        cmd += ["--from", str(folder.relative_to(ROOT) if folder.is_relative_to(ROOT)
                              else folder)]
    if name in SWEEPS:
        if args.scheduler:
            cmd += ["--scheduler", args.scheduler]
        elif args.workers is not None:
            cmd += ["--workers", str(args.workers)]
        if args.fresh:
            cmd.append("--fresh")
    return cmd


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="examples/reproduce.py", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="every script in quick mode (smoke test)")
    p.add_argument("--workers", type=int, default=None,
                   help="Dask worker processes per sweep (default: one per core, in-process "
                        "with --quick); 1: in-process")
    p.add_argument("--scheduler", default=None, help="an existing Dask scheduler's address")
    p.add_argument("--only", default=",".join(ORDER), help="comma-separated subset, in order")
    p.add_argument("--fresh", action="store_true", help="forget the sweeps' finished runs")
    p.add_argument("--no-results", dest="results", action="store_false",
                   help="do not regenerate RESULTS.md")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if not names or set(names) - set(ORDER):
        p.error(f"--only: choose from {', '.join(ORDER)}; got {args.only!r}")
    names = [n for n in ORDER if n in names]

    times, failed = {}, []
    for name in names:
        cmd = command(name, args)
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call(cmd, cwd=ROOT)
        times[name] = time.perf_counter() - t0
        if code:
            failed.append(name)
            print(f"=== {name} FAILED (exit {code})", flush=True)
    print("\nreproduce: " + ", ".join(f"{n} {t:.0f} s" for n, t in times.items()), flush=True)
    if args.results and not args.quick and not failed:
        subprocess.check_call([sys.executable, str(HERE / "make_results.py")], cwd=ROOT)
    if failed:
        print(f"reproduce: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
