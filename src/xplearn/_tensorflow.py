"""The TensorFlow bridge.

TensorFlow is not Array API compliant, so its tensors never reach the
algorithms.  In eager mode a tensor goes by DLPack to torch when torch is
installed (a GPU tensor stays on that GPU) and to numpy otherwise; results go
back by DLPack.  Objects xplearn cannot compute on eagerly (symbolic tensors
inside ``tf.function``, ragged and sparse tensors, ``IndexedSlices``) get a
built-in ``TypeError`` that says what to do: a custom exception class would
reach the user wrapped in autograph's ``StagingError``.

The query methods of fitted estimators (:func:`xplearn._traced.traced_method`)
do answer symbolic tensors: they hand them to the TF-native kernels of
:mod:`xplearn.tensorflow`.

This module is only reached with TensorFlow already in ``sys.modules`` (the
caller handed us a tensor), so it takes TF from there and imports nothing.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from types import ModuleType
from typing import Any

from ._config import get_config


def _tf() -> Any:
    return sys.modules["tensorflow"]


def is_tf_tensor(x: object) -> bool:
    """Whether ``x`` is any TensorFlow tensor-like object (eager or not)."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return False
    return isinstance(
        x,
        tf.Tensor | tf.Variable | tf.RaggedTensor | tf.SparseTensor | tf.IndexedSlices,
    )


def check_eager(x: Any, name: str = "X") -> Any:
    """Return ``x`` as an eager ``tf.Tensor`` or raise a ``TypeError`` saying why not.

    A ``tf.Variable`` is read with ``.value()``.
    """
    tf = _tf()
    if isinstance(x, tf.RaggedTensor):
        msg = (
            f"{name} is a tf.RaggedTensor; xplearn needs a dense 2-D tensor with "
            "rows of equal length. Convert it with x.to_tensor(default_value=...) "
            "if padding is what you want, choosing the pad value yourself."
        )
        raise TypeError(msg)
    if isinstance(x, tf.SparseTensor):
        msg = (
            f"{name} is a tf.SparseTensor; xplearn needs dense input. "
            "Convert it with tf.sparse.to_dense(x)."
        )
        raise TypeError(msg)
    if isinstance(x, tf.IndexedSlices):
        msg = (
            f"{name} is a tf.IndexedSlices (a sparse gradient); convert it with "
            "tf.convert_to_tensor(x) first."
        )
        raise TypeError(msg)
    if isinstance(x, tf.Variable):
        x = x.value()
    if tf.is_symbolic_tensor(x):
        msg = (
            f"{name} is a symbolic TensorFlow tensor (inside tf.function or a "
            "Keras graph). In a graph xplearn answers the query methods of "
            "fitted estimators (kneighbors, predict, predict_proba, and KMeans' "
            "transform and score) and fits KMeans with xplearn.tensorflow.kmeans; "
            "everything else computes eagerly: call it outside tf.function, or "
            "wrap the call in tf.py_function."
        )
        raise TypeError(msg)
    return x


def is_symbolic(x: object) -> bool:
    """Whether ``x`` is a TF tensor without a value yet (a graph being traced).

    A ``tf.Variable`` counts while a graph is being built: reading it there
    gives a symbolic tensor.
    """
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return False
    if isinstance(x, tf.Variable):
        return not tf.executing_eagerly()
    return isinstance(x, tf.Tensor) and bool(tf.is_symbolic_tensor(x))


@functools.cache
def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def compute_backend() -> str:
    """Namespace ("torch" or "numpy") eager TF tensors are computed on."""
    choice = get_config()["tf_namespace"]
    if choice == "auto":
        return "torch" if _torch_installed() else "numpy"
    if choice == "torch" and not _torch_installed():
        msg = (
            "tf_namespace='torch' was configured but torch is not installed; "
            "install it (pip install 'xplearn[torch]') or use tf_namespace='numpy'."
        )
        raise ImportError(msg)
    return choice


def _is_dlpack_dtype(dtype: Any) -> bool:
    # TF aborts the whole process (a C++ CHECK, not an exception) when asked
    # to export a string tensor by DLPack, and refuses bfloat16; only plain
    # numeric and bool dtypes may go that way.
    return bool(
        (dtype.is_floating or dtype.is_integer or dtype.is_bool or dtype.is_complex)
        and not dtype.is_quantized
        and dtype.name != "bfloat16"
    )


def to_compute(x: Any, name: str = "X") -> Any:
    """Eager TF tensor → torch tensor or numpy array, sharing memory.

    bfloat16 is cast to float32 in TF first (neither DLPack nor numpy carry
    it; the dtype policy computes it in float32 anyway).  Strings and other
    non-numeric tensors come to the host as numpy arrays (labels may be
    strings); validation rejects them where numbers are needed.
    """
    tf = _tf()
    t = check_eager(x, name)
    if t.dtype.name == "bfloat16":
        t = tf.cast(t, tf.float32)
    if not _is_dlpack_dtype(t.dtype):
        return t.numpy()
    if compute_backend() == "torch":
        import torch.utils.dlpack

        if hasattr(t, "__dlpack__"):
            return torch.utils.dlpack.from_dlpack(t)
        # TF < 2.17 has no __dlpack__ protocol, only capsules.
        return torch.utils.dlpack.from_dlpack(tf.experimental.dlpack.to_dlpack(t))
    import numpy as np

    # np.from_dlpack shares the buffer of a CPU tensor as a read-only view;
    # .numpy() copies (TF 2.21) and is the fallback for tensors on a GPU.
    try:
        return np.from_dlpack(t)
    except (BufferError, TypeError, RuntimeError, AttributeError):
        return t.numpy()


def to_host(x: Any) -> Any:
    """Eager TF tensor → numpy array, a read-only zero-copy view where it can be.

    ``.numpy()`` copies (TF 2.21); ``np.from_dlpack`` shares a CPU tensor's
    buffer.  bfloat16 comes back as float32 (numpy has no bfloat16); strings,
    and tensors DLPack refuses (on a GPU), by ``.numpy()``.
    """
    import numpy as np

    tf = _tf()
    t = check_eager(x)
    if t.dtype.name == "bfloat16":
        t = tf.cast(t, tf.float32)
    if not _is_dlpack_dtype(t.dtype):
        return t.numpy()
    try:
        return np.from_dlpack(t)
    except (BufferError, TypeError, RuntimeError, AttributeError):
        return t.numpy()


def is_bfloat16(x: Any) -> bool:
    """Whether ``x`` is a TF tensor or variable of dtype bfloat16."""
    return str(getattr(x, "dtype", "")) == "<dtype: 'bfloat16'>"


def cast_back(t: Any, dtype_name: str) -> Any:
    """Cast a floating TF result back to the caller's dtype (bfloat16)."""
    tf = _tf()
    if t.dtype.is_floating:
        return tf.cast(t, dtype_name)
    return t


def from_compute(r: Any) -> Any:
    """Return a torch or numpy result as an eager TF tensor, by DLPack if possible.

    TF's DLPack import rejects non-contiguous strides, so results are made
    C-contiguous first.  Non-numeric numpy results (string labels) stay numpy,
    as scikit-learn returns them.
    """
    tf = _tf()
    name = type(r).__module__.partition(".")[0]
    if name == "torch":
        r = r.detach().contiguous()
    elif name == "numpy":
        import numpy as np

        if r.dtype.kind not in "biufc":
            return r
        if not r.flags.writeable:
            # numpy refuses to export read-only buffers by (unversioned) DLPack.
            return tf.convert_to_tensor(r)
        r = np.ascontiguousarray(r)
    else:
        return r
    try:
        return tf.experimental.dlpack.from_dlpack(r.__dlpack__())
    except Exception:  # noqa: BLE001 - TF refuses some buffers (alignment): copy
        return tf.convert_to_tensor(_host(r))


def _host(r: Any) -> Any:
    name = type(r).__module__.partition(".")[0]
    return r.cpu().numpy() if name == "torch" else r


def device_of(x: Any) -> str:
    """TF device string of an eager tensor (``/job:.../device:CPU:0``)."""
    return str(check_eager(x).device)


def namespace_for_tf() -> ModuleType:
    """Array API namespace eager TF tensors are computed on."""
    return importlib.import_module(f"array_api_compat.{compute_backend()}")
