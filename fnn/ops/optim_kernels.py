"""numba kernels of the optimiser updates (:mod:`fnn.ops.update` calls them on the compiled
backend; nothing imports this module before). A leaf: numba and numpy only.

Each takes C-contiguous arrays of one float dtype and the hyper-parameters as scalars of that
dtype, and does numpy's operations in numpy's order (no fused multiply-add: fastmath off), so
both backends give the same bits.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")


@_jit
def adam(m, v, g, b1, a1, b2, a2, c, eps, m_out, v_out, u):
    """``m' = g a1 + b1 m``, ``v' = (g g) a2 + b2 v``, ``u = (c m') / (sqrt(v') + eps)``, in
    one pass (``a1 = 1 - b1``, ``a2 = 1 - b2``)."""
    m, v, g = m.reshape(m.size), v.reshape(v.size), g.reshape(g.size)
    m_out, v_out, u = m_out.reshape(m_out.size), v_out.reshape(v_out.size), u.reshape(u.size)
    for i in range(g.shape[0]):
        gi = g[i]
        mi = gi * a1 + b1 * m[i]
        vi = (gi * gi) * a2 + b2 * v[i]
        m_out[i] = mi
        v_out[i] = vi
        u[i] = (c * mi) / (np.sqrt(vi) + eps)
