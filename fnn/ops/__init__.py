"""The numerics under the layers: array kernels that know nothing of :class:`fnn.Layer`.

* :mod:`fnn.ops.windows` — window geometry, padding, strided windows and their adjoint (fold);
* :mod:`fnn.ops.conv` — patch matrices, convolution and its adjoints, kernel/bias gradients;
* :mod:`fnn.ops.winograd` — 3×3 stride-1 convolutions by Winograd's F(2×2, 3×3) (compiled
  backend);
* :mod:`fnn.ops.dense` — the dense layer's input gradient in BLAS's faster layout;
* :mod:`fnn.ops.pool` — max-pool with arg-max (optionally fused with a preceding relu),
  average pool, their backward passes;
* :mod:`fnn.ops.geometry` — window geometry (a leaf: sizes, pads, strides);
* :mod:`fnn.ops.activations` — activations beside their vector-Jacobian products (one table);
* :mod:`fnn.ops.resample` — nearest up-sampling and its adjoint;
* :mod:`fnn.ops.update` — the optimiser's one-pass ``p + a * u``;
* :mod:`fnn.ops.norm` — moments, normalisation and its backward pass (batch-, layer-,
  group-norm; sums across batch shards through a ``reduce`` hook);
* :mod:`fnn.ops.losses` — each loss's value and gradient in one call (one table);
* :mod:`fnn.ops.embedding`, :mod:`fnn.ops.recurrent`, :mod:`fnn.ops.attention` — token
  look-ups and their scatter-add, RNN/GRU/LSTM through time, scaled dot-product attention.

Each kernel has a numpy implementation, the reference, and a compiled one (numba, in
:mod:`fnn.ops.compiled`) behind the same signature for the memory-bound parts; matrix products
stay in BLAS on both. Which one runs:

* :func:`use` ``("numpy" | "compiled")`` for the whole process (returns the previous one),
  :func:`using` for a ``with`` block;
* else the environment variable ``FNN_BACKEND=numpy|compiled``, read on first use;
* else ``"compiled"`` when numba is installed (``pip install 'fnn[fast]'``), else ``"numpy"``.

numba is imported when a compiled kernel first runs, never by ``import fnn``.

>>> import fnn
>>> fnn.ops.backend() in ("numpy", "compiled")
True
>>> with fnn.ops.using("numpy"):
...     fnn.ops.backend()
'numpy'
"""

from fnn.ops._backend import BACKENDS, available, backend, describe, use, using

__all__ = ["BACKENDS", "available", "backend", "describe", "use", "using"]
