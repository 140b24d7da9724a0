"""
KNN on the edge: a fitted classifier as a TFLite model
======================================================

The reference workflow of :mod:`xplearn.tensorflow`: enroll make_blobs data
(1 000 points, 5 centres, 2 features), keep 30% for testing, fit a k=3
:class:`~xplearn.neighbors.KNeighborsClassifier`, export it as a TensorFlow
module and as a TFLite flatbuffer, and check that TensorFlow and TFLite give
the same neighbours (indices, not only labels) and the same accuracy.  The
TFLite model runs on LiteRT (``ai-edge-litert``), the runtime that phones and
microcontroller-class devices run; TensorFlow's deprecated
``tf.lite.Interpreter`` stands in where it is not installed.

Run it as ``python examples/tflite_knn.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log

import numpy as np
import tensorflow as tf
from sklearn.datasets import make_blobs
from sklearn.model_selection import train_test_split

import xplearn.tensorflow as xtf
from xplearn.neighbors import KNeighborsClassifier


def interpreter(flatbuffer: bytes) -> Any:
    """LiteRT's interpreter, else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter is deprecated
            return tf.lite.Interpreter(model_content=flatbuffer)
    return Interpreter(model_content=flatbuffer)


def main(out: Path) -> None:
    """Fit, export, run in TF and TFLite, compare."""
    # %%
    # Enroll the data and fit (float32: the precision TFLite computes in).
    X, y = make_blobs(n_samples=1000, centers=5, n_features=2, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(np.float32), y, test_size=0.3, random_state=0
    )
    clf = KNeighborsClassifier(n_neighbors=3).fit(X_train, y_train)

    # %%
    # The fitted classifier as a TF module: one signature per method.
    module = xtf.to_module(clf)
    tf_neigh = module.kneighbors(tf.constant(X_test))
    tf_labels = module.predict(tf.constant(X_test))["labels"].numpy()

    # %%
    # The same module as a TFLite flatbuffer (builtin operations only).
    path = out / "knn.tflite"
    flatbuffer = xtf.to_tflite(clf, path)
    lite = interpreter(flatbuffer)
    lite_neigh = lite.get_signature_runner("kneighbors")(X=X_test)
    lite_labels = lite.get_signature_runner("predict")(X=X_test)["labels"]
    np.testing.assert_array_equal(lite_neigh["indices"], tf_neigh["indices"].numpy())
    np.testing.assert_array_equal(lite_labels, tf_labels)
    one = lite.get_signature_runner("predict")(X=X_test[:1])["labels"]  # any batch
    assert one.tolist() == tf_labels[:1].tolist()

    acc_tf = float(np.mean(tf_labels == y_test))
    acc_lite = float(np.mean(lite_labels == y_test))
    print(f"training points: {X_train.shape[0]}, test points: {X_test.shape[0]}")
    print(f"model: {path.name}, {len(flatbuffer):,} bytes")
    print("TF and TFLite neighbours identical: True")
    print(f"accuracy TF:     {acc_tf:.3f}")
    print(f"accuracy TFLite: {acc_lite:.3f}")

    # %%
    # Half-precision weights halve the stored points; the points move by
    # their float16 rounding, so a neighbour may change at a near tie.
    half = xtf.to_tflite(clf, weights="float16")
    half_labels = interpreter(half).get_signature_runner("predict")(X=X_test)["labels"]
    agree = float(np.mean(half_labels == lite_labels))
    print(f"float16 weights: {len(half):,} bytes, label agreement {agree:.3f}")

    # %%
    # Latency of one query on LiteRT (after a warm-up call).
    runner = lite.get_signature_runner("predict")
    runner(X=X_test[:1])
    t = time.perf_counter()
    for i in range(100):
        runner(X=X_test[i : i + 1])
    print(f"TFLite batch-1 latency: {(time.perf_counter() - t) * 1e4:.0f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--out", type=Path, default=None, help="where knn.tflite goes")
    args = parser.parse_args()
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        main(args.out)
