"""Report section 3.1.1: weight initialisation schemes for dense networks.

    python examples/init_schemes.py [--quick] [--seeds 3] [--toy-epochs 100] [--usps-epochs 30]

Trains the same networks (toy sets: 2-16-16-2 tanh, USPS: 256-100-10 tanh; SGD, batch 32, one
fixed learning rate per data set) from each of the report's 8 initialisation schemes, with the
same seeds (hence the same batch order) for every scheme. Figures: train loss per scheme
(``loss_<dataset>.png``), final test accuracy per scheme and data set (``test_accuracy.png``),
decision boundaries of a few schemes on the toy sets (``boundaries.png``), and for the best
USPS scheme its first-layer weights as 16x16 images and its confusion matrix.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
import common  # noqa: E402
import dense_common as dc  # noqa: E402

NAME = "init_schemes"
NEEDS_REAL_DATA = True
SCHEMES = ("normal", "uniform", "ones", "zeros", "xavier_normal", "xavier_uniform", "he_normal",
           "he_uniform")
SHOWN = ("zeros", "normal", "xavier_uniform", "he_uniform")  # in the decision-boundary grid


@common.one_blas_thread
def main(argv=None) -> dict:
    t0 = time.time()
    p = dc.add_arguments(common.parser(NAME, "Report 3.1.1: initialisation schemes (dense)."))
    common.add_sweep_arguments(p)
    args = dc.parse(p, argv)
    out = common.out_dir(NAME, args)
    print(f"{NAME}: {len(SCHEMES)} schemes x {len(args.datasets)} data sets x {args.seeds} "
          f"seeds, tanh, SGD (toy lr {args.toy_lr}, USPS lr {args.usps_lr})", flush=True)
    data = dc.load_all(args)
    grid, sweep_result = dc.run_grid(NAME, args, data, {s: {"w_init": s} for s in SCHEMES}, out)

    figures = dc.loss_overlays(out, grid, "initialisation")
    figures.append(dc.accuracy_bars(out, grid, "initialisation"))
    figures.append(dc.boundary_grid(out, grid, data, dc.TOY, SHOWN, "boundaries.png",
                                    "decision boundaries (test points) per initialisation",
                                    args.quick))
    figures += dc.usps_figures(out, grid, data, "initialisation", args.quick)

    metrics = {"settings": dc.settings(args), "schemes": list(SCHEMES),
               "results": dc.summarise(grid),
               "best": {n: dc.best_variant(by) for n, by in grid.items()}}
    common.write_results(NAME, out, args, metrics, rows=dc.rows(grid, "init"), started=t0,
                         sweeps=[sweep_result])
    return {"out": str(out), "figures": [str(f) for f in figures if f], **metrics}


if __name__ == "__main__":
    main()
