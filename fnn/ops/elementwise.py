"""TEMPORARY re-export (issue 21): the activation kernels moved to :mod:`fnn.ops.activations`
and the optimiser's ``add_scaled`` to :mod:`fnn.ops.update`. ``fnn.optim`` still imports
``add_scaled`` from here on its branch; the lead deletes this module when merging.

>>> from fnn.ops.elementwise import add_scaled
>>> add_scaled.__module__
'fnn.ops.update'
"""

from fnn.ops.update import ADD_SCALED_COMPILED_MIN, add_scaled  # TEMPORARY: see above

__all__ = ["ADD_SCALED_COMPILED_MIN", "add_scaled"]
