"""Latent spaces: codes embedded in 2-D (:func:`embed_2d`: t-SNE, PCA) and drawn coloured by
class (:func:`latent_map`). t-SNE and PCA need scikit-learn (the ``data`` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fnn._extras import require
from fnn.plot._style import class_labels, colors, one_panel, shape_str
from fnn.validate import integer, one_of, positive, positive_int

__all__ = ["embed_2d", "latent_map"]

METHODS = ("tsne", "pca", "none")


def embed_2d(z: Any, method: str = "tsne", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """(N, d) -> (N, 2): t-SNE (``"tsne"``), PCA (``"pca"``), or ``"none"`` (the first two
    coordinates). 2-D input is returned as is; 1-D codes get a zero second coordinate.

    >>> import numpy as np, fnn
    >>> fnn.plot.embed_2d(np.eye(4, 3), method="pca").shape
    (4, 2)
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 1:
        raise ValueError(f"embed_2d: z must be (N, d) codes; got shape {shape_str(z.shape)}")
    one_of("embed_2d", "method", method, METHODS)
    seed = integer("embed_2d", "seed", seed, minimum=0)
    perplexity = positive("embed_2d", "perplexity", perplexity)
    if z.shape[1] == 1:
        z = np.concatenate([z, np.zeros_like(z)], axis=1)
    if z.shape[1] == 2 or method == "none":
        return z[:, :2].copy()
    n = z.shape[0]
    if n < 2:
        raise ValueError(f"embed_2d: {method} needs at least 2 points; got shape "
                         f"{shape_str(z.shape)}")
    if method == "pca":
        PCA = require("sklearn.decomposition", "fnn.plot.embed_2d(method='pca')").PCA

        return PCA(n_components=2, random_state=seed).fit_transform(z)
    TSNE = require("sklearn.manifold", "fnn.plot.embed_2d(method='tsne')").TSNE
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (n - 1) / 3), init="pca",
                random_state=seed)
    return tsne.fit_transform(z)


def _codes_and_labels(z: Any, labels: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``z: (N, d)`` codes and ``labels: (N,)`` ints (or None), or a worded error."""
    z = np.asarray(z)
    if z.ndim != 2:
        raise ValueError(f"latent_map: z must be (N, d) codes; got shape {shape_str(z.shape)}")
    if labels is None:
        return z, None
    labels = np.asarray(labels)
    if labels.shape != (z.shape[0],):
        raise ValueError(f"latent_map: labels must be (N,) with N={z.shape[0]} like z; got "
                         f"shape {shape_str(labels.shape)}")
    return z, labels.astype(int)


def latent_map(
    z: Any, labels: Any = None, *, method: str = "tsne", class_names: Sequence[str] | None = None,
    max_points: int | None = 3000, seed: int = 0, perplexity: float = 30.0,
    title: str | None = None,
) -> Figure:
    """Latent codes ``z: (N, d)`` in 2-D (see :func:`embed_2d`), coloured by ``labels: (N,)``.
    At most ``max_points`` points, a seeded random subset, are embedded and drawn.

    >>> import numpy as np, fnn
    >>> z = np.random.default_rng(0).normal(size=(20, 2)); labels = np.arange(20) % 3
    >>> fig = fnn.plot.latent_map(z, labels, class_names=["a", "b", "c"])
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['a', 'b', 'c']
    """
    z, labels = _codes_and_labels(z, labels)
    one_of("latent_map", "method", method, METHODS)
    if max_points is not None and z.shape[0] > positive_int("latent_map", "max_points",
                                                            max_points):
        idx = np.sort(np.random.default_rng(seed).choice(z.shape[0], max_points, replace=False))
        z = z[idx]
        labels = labels[idx] if labels is not None else None
    e = embed_2d(z, method=method, seed=seed, perplexity=perplexity)
    used = "none" if z.shape[1] <= 2 else method
    fig, ax = one_panel((5, 4.2))
    if labels is None:
        ax.scatter(e[:, 0], e[:, 1], s=6, alpha=0.7)
    else:
        k = int(max(labels.max(initial=0), len(class_names or ()) - 1)) + 1
        palette, names = colors(k), class_labels(class_names, k)
        for c in np.unique(labels):
            sel = labels == c
            ax.scatter(e[sel, 0], e[sel, 1], s=6, alpha=0.7, color=palette[c], label=names[c])
        ax.legend(fontsize=7, markerscale=2, loc="best")
    axis = {"tsne": "t-SNE", "pca": "PC", "none": "z"}[used]
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    ax.set_title(title or f"latent space ({axis if used != 'none' else 'raw'}, "
                          f"{e.shape[0]} points)")
    return fig
