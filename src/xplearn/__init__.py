"""xplearn: nearest neighbours and KMeans on any array framework.

Hand xplearn numpy, torch, jax, cupy, dask, array-api-strict or TensorFlow
data; it computes natively in that framework and on that device and answers in
the caller's own framework.  Importing xplearn loads none of those frameworks.

Examples
--------
>>> import numpy as np
>>> import xplearn
>>> xp = xplearn.get_namespace(np.ones((2, 2)))
>>> xplearn.to_namespace([[1.0, 2.0]], xp)
array([[1., 2.]])
"""

from ._config import config_context, get_config, set_config
from ._convert import to_namespace, to_numpy
from ._dispatch import device, get_namespace, tensor_agnostic

__version__ = "0.1.0.dev0"


def __getattr__(name: str) -> object:
    # wrap imports scikit-learn, which `import xplearn` must not (contract 4).
    if name in {"wrap", "Wrapped"}:
        from . import _wrap

        return getattr(_wrap, name)
    msg = f"module 'xplearn' has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "__version__",
    "config_context",
    "device",
    "get_config",
    "get_namespace",
    "set_config",
    "tensor_agnostic",
    "to_namespace",
    "to_numpy",
    "wrap",
]
