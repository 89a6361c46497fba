"""Figures for training runs. Every function returns a matplotlib Figure and never calls
``plt.show()``: figures are built without pyplot, so they work headless and in notebooks
(a Figure displays inline) alike; save with ``fig.savefig(path)``.

By family: training curves (:mod:`fnn.plot.training`: :func:`curves`,
:func:`curves_overlay`); classifiers (:mod:`fnn.plot.classification`:
:func:`confusion_matrix`, :func:`decision_boundary`); images, weights and filters
(:mod:`fnn.plot.images`: :func:`image_grid`, :func:`image_rows`,
:func:`reconstruction_strip`, :func:`weights`, :func:`filters`); latent spaces
(:mod:`fnn.plot.latent`: :func:`embed_2d`, :func:`latent_map`); comparisons across runs
(:mod:`fnn.plot.sweeps`: :func:`sweep`, :func:`bar_table`, :func:`grouped_bars`). Use them as
``fnn.plot.<name>``. ``fnn.plot`` needs matplotlib (``pip install 'fnn[plot]'``) and is
loaded on first use, so ``import fnn`` does not import matplotlib.

>>> import fnn
>>> fnn.plot.bar_table(["a", "b"], [1.0, 2.0]).get_axes()[0].get_xticklabels()[1].get_text()
'b'
"""

from fnn._extras import require

require("matplotlib", "fnn.plot")  # names the extra to install when matplotlib is missing

from fnn.plot._style import LOG_MIN_RATIO as LOG_MIN_RATIO  # noqa: E402  (fnn.plot.LOG_MIN_RATIO)
from fnn.plot.classification import confusion_matrix, decision_boundary  # noqa: E402
from fnn.plot.images import (  # noqa: E402
    filters,
    image_grid,
    image_rows,
    reconstruction_strip,
    weights,
)
from fnn.plot.latent import embed_2d, latent_map  # noqa: E402
from fnn.plot.sweeps import bar_table, grouped_bars, sweep  # noqa: E402
from fnn.plot.training import curves, curves_overlay, refresh_curves  # noqa: E402

__all__ = (  # the figures, by family: training, classification, images, latent, sweeps
    "curves", "curves_overlay", "refresh_curves", "confusion_matrix", "decision_boundary",
    "filters", "image_grid", "image_rows", "reconstruction_strip", "weights", "embed_2d",
    "latent_map", "bar_table", "grouped_bars", "sweep",
)
