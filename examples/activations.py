"""Report section 3.1.3: activation functions of dense networks.

    python examples/activations.py [--quick] [--seeds 3] [--toy-epochs 100] [--usps-epochs 30]

Trains the same networks (toy sets: 2-16-16-2, USPS: 256-100-10; Xavier-uniform init, SGD,
batch 32, one fixed learning rate per data set) with each hidden activation, ``identity``
being the linear baseline, with the same seeds for every activation. Figures: train loss per
activation (``loss_<dataset>.png``), final test accuracy per activation and data set
(``test_accuracy.png``), and one decision boundary per activation on the toy sets
(``boundaries_<dataset>.png``; only the chessboard's in quick mode).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
import common  # noqa: E402
import dense_common as dc  # noqa: E402

NAME = "activations"
NEEDS_REAL_DATA = True
ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu", "softplus", "elu", "gelu", "sine",
               "identity")


@common.one_blas_thread
def main(argv=None) -> dict:
    t0 = time.time()
    p = dc.add_arguments(common.parser(NAME, "Report 3.1.3: activation functions (dense)."))
    common.add_sweep_arguments(p)
    args = dc.parse(p, argv)
    out = common.out_dir(NAME, args)
    print(f"{NAME}: {len(ACTIVATIONS)} activations x {len(args.datasets)} data sets x "
          f"{args.seeds} seeds, Xavier-uniform init, SGD (toy lr {args.toy_lr}, USPS lr "
          f"{args.usps_lr})", flush=True)
    data = dc.load_all(args)
    grid, sweep_result = dc.run_grid(NAME, args, data, {a: {"activation": a} for a in ACTIVATIONS},
                                     out)

    figures = dc.loss_overlays(out, grid, "activation")
    figures.append(dc.accuracy_bars(out, grid, "activation"))
    for name in ("chessboard",) if args.quick else dc.TOY:
        figures.append(dc.boundary_grid(out, grid, data, [name], ACTIVATIONS,
                                        f"boundaries_{name}.png",
                                        f"{dc.TITLES[name]}: decision boundary (test points) "
                                        "per activation", args.quick))

    metrics = {"settings": dc.settings(args), "activations": list(ACTIVATIONS),
               "results": dc.summarise(grid),
               "best": {n: dc.best_variant(by) for n, by in grid.items()}}
    common.write_results(NAME, out, args, metrics, rows=dc.rows(grid, "activation"),
                         started=t0,
                         sweeps=[sweep_result])
    return {"out": str(out), "figures": [str(f) for f in figures if f], **metrics}


if __name__ == "__main__":
    main()
