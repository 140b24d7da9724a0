"""Data and runners the TensorFlow graph and export tests share.

The data sets are the adversarial ones for an exact float32 search: a large
common offset (the expansion's rounding grows with the norms), integer grids
(exact ties everywhere, broken by the lower index), near and exact
duplicates, and magnitudes past float32's squares (the power-of-two scaling).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

DATA = ("gauss", "offset", "grid", "duplicates", "huge", "tiny")


def dataset(name: str, seed: int = 0) -> tuple[Any, Any]:
    """Training points and queries (float32) of one adversarial kind."""
    rng = np.random.default_rng(seed)
    if name == "gauss":
        X, Q = rng.normal(size=(300, 5)), rng.normal(size=(97, 5))
    elif name == "offset":
        X = 1e4 + rng.normal(size=(300, 3))
        Q = 1e4 + rng.normal(size=(97, 3))
    elif name == "grid":
        g = np.arange(12.0)
        X = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
        Q = rng.integers(0, 24, size=(97, 2)) / 2.0  # on and between grid points
    elif name == "duplicates":
        base = rng.normal(size=(60, 4))
        X = np.concatenate([base, base, base + 1e-6 * rng.normal(size=base.shape)])
        Q = np.concatenate([base[:40], rng.normal(size=(57, 4))])
    elif name == "huge":
        X, Q = 1e25 * rng.normal(size=(200, 3)), 1e25 * rng.normal(size=(97, 3))
    elif name == "tiny":
        X, Q = 1e-20 * rng.normal(size=(200, 3)), 1e-20 * rng.normal(size=(97, 3))
    else:
        raise AssertionError(name)
    return X.astype(np.float32), Q.astype(np.float32)


def reference_workflow(dtype: Any = np.float32) -> tuple[Any, Any, Any, Any]:
    """The issue's workflow: make_blobs (1 000 points, 5 centres, 2 features).

    30% held out for testing, the training and test data in ``dtype``.
    """
    from sklearn.datasets import make_blobs
    from sklearn.model_selection import train_test_split

    X, y = make_blobs(n_samples=1000, centers=5, n_features=2, random_state=0)
    split = train_test_split(X.astype(dtype), y, test_size=0.3, random_state=0)
    X_train, X_test, y_train, y_test = split
    return X_train, X_test, y_train, y_test


def interpreter(flatbuffer: bytes) -> Any:
    """A TFLite interpreter: ai-edge-litert's, else TensorFlow's (deprecated)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_content=flatbuffer)
    return Interpreter(model_content=flatbuffer)


def run_tflite(flatbuffer: bytes, method: str, X: Any) -> dict[str, Any]:
    """Outputs of one signature of a TFLite model for the batch ``X``."""
    return dict(interpreter(flatbuffer).get_signature_runner(method)(X=X))
