"""Interoperability: models and weights leaving fnn and coming in.

* :mod:`fnn.interop.onnx_export` — :func:`fnn.export_onnx`, an fnn model as an ONNX graph
  (onnxruntime, phones, browsers); the ``onnx`` extra.
* :mod:`fnn.interop.torch_weights` — a ``torch.nn`` module's ``state_dict`` into fnn params
  (and state) and back, layouts converted; the ``torch`` extra for torch tensors and files.
* :mod:`fnn.interop.safetensors_files` — the ``.safetensors`` file format behind
  ``fnn.save("m.safetensors", tree)`` / ``fnn.load``: no extra, no pickle.

This package imports none of its modules (nor any optional dependency): ``import fnn`` stays
light, and each is loaded when first used.
"""
