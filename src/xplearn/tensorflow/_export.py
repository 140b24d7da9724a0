"""Fitted estimators as ``tf.Module``, SavedModel and TFLite flatbuffer.

One serving signature per query method, each taking ``X`` of shape
``(None, n_features)`` (any batch size) and answering a dict of named
outputs.  The fitted arrays are non-trainable variables of the module: a
SavedModel keeps them in its checkpoint (no 2 GiB graph limit) and the TFLite
converter freezes them into constants.  Loading either needs TensorFlow (or a
TFLite runtime) only, not xplearn.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ._graph import WIDE_RERANK
from ._model import FittedState, GraphModel, check_weights, fitted_state, index_arrays

# Each kind's serving signatures (the first is "serving_default") and outputs.
SIGNATURES = {
    "neighbors": ("kneighbors",),
    "classifier": ("predict", "predict_proba", "kneighbors"),
    "regressor": ("predict", "kneighbors"),
    "kmeans": ("predict", "transform", "score"),
}


def build_module(estimator: Any, *, finite: bool = True, state: Any = None) -> Any:
    """Build the ``tf.Module`` of :func:`xplearn.tensorflow.to_module`.

    ``finite``: stop on NaN or infinity in ``X`` (TFLite has no operation
    for that check).  ``state``: a :class:`FittedState` to use instead of
    the estimator's (TFLite's float32 copy of a float64 fit).
    """
    import tensorflow as tf

    from ._hook import check_graph_input

    if state is None:
        state = fitted_state(estimator)
    k, weights = 1, "uniform"
    if state.kind != "kmeans":
        from xplearn.neighbors import check_n_neighbors

        k = check_n_neighbors(estimator.n_neighbors, int(estimator.n_samples_fit_))
    if state.kind in ("classifier", "regressor"):
        weights = check_weights(estimator)
    module = tf.Module(name=state.estimator)
    arrays: dict[str, Any] = {}

    def make(a: Any, name: str) -> Any:
        arrays[name] = tf.Variable(a, trainable=False, name=name)
        return arrays[name]

    model = GraphModel(state, make)
    module.fitted = arrays  # tracked: saved with the module
    spec = tf.TensorSpec([None, state.n_features], model.dtype, name="X")

    def checked(X: Any) -> Any:
        X, _ = check_graph_input(
            X, state.n_features, model.dtype, state.estimator, finite=finite
        )
        return X

    def kneighbors(X: Any) -> dict[str, Any]:
        dist, ind = model.kneighbors(checked(X), k)
        return {"distances": dist, "indices": ind}

    def predict(X: Any) -> dict[str, Any]:
        X = checked(X)
        if state.kind == "kmeans":
            return {"labels": model.predict_clusters(X)}
        if state.kind == "classifier":
            return {"labels": model.predict_classes(X, k, weights)}
        return {"predictions": model.predict_values(X, k, weights)}

    def predict_proba(X: Any) -> dict[str, Any]:
        p = model.predict_proba(checked(X), k, weights)
        if isinstance(p, list):
            return {f"probabilities_{j}": pj for j, pj in enumerate(p)}
        return {"probabilities": p}

    def transform(X: Any) -> dict[str, Any]:
        return {"distances": model.transform(checked(X))}

    def score(X: Any) -> dict[str, Any]:
        return {"score": model.score(checked(X))}

    methods = {
        "kneighbors": kneighbors,
        "predict": predict,
        "predict_proba": predict_proba,
        "transform": transform,
        "score": score,
    }
    for name in SIGNATURES[state.kind]:
        # autograph=False: the kernels build the graph in plain Python (no
        # tensor-dependent Python control flow) and need no conversion.
        fn = tf.function(methods[name], input_signature=[spec], autograph=False)
        setattr(module, name, fn)
    if state.kind == "classifier":
        module.classes = [tf.Variable(c, trainable=False) for c in model.classes]
    module.signature_names = SIGNATURES[state.kind]
    return module


def signatures(module: Any, *, default: bool = True) -> dict[str, Any]:
    """Return the module's serving signatures; ``default`` adds ``serving_default``.

    ``serving_default`` is the first method's (predict, or kneighbors for
    NearestNeighbors).
    """
    names = module.signature_names
    sigs = {n: getattr(module, n).get_concrete_function() for n in names}
    if default:
        sigs["serving_default"] = sigs[names[0]]
    return sigs


def save(estimator: Any, path: Any) -> None:
    """Write the module of :func:`build_module` as a SavedModel at ``path``."""
    import tensorflow as tf

    module = build_module(estimator)
    tf.saved_model.save(module, str(path), signatures=signatures(module))


def _tflite_state(estimator: Any) -> FittedState:
    """Read the estimator's state as TFLite takes it: float32, numeric labels."""
    state = fitted_state(estimator)
    if state.kind == "classifier":
        bad = [c for c in state.classes if c.dtype.kind not in "biuf"]
        if bad:
            msg = (
                f"{state.estimator} was fitted with {bad[0].dtype} class labels, "
                "which TFLite models cannot hold (no string tensors in the "
                "builtin operations). Fit on integer codes and map them back: "
                "codes = np.searchsorted(classes, y) with classes = np.unique(y) "
                "(or sklearn.preprocessing.LabelEncoder), then "
                "classes[tflite_labels] gives the labels. xplearn.tensorflow."
                "to_module and save keep string labels."
            )
            raise ValueError(msg)
    if state.index.Y.dtype == np.float64:
        warnings.warn(
            f"{state.estimator} was fitted on float64 data; TFLite computes in "
            "float32, so the model holds the fitted data cast to float32 and "
            "answers as the estimator fitted on X.astype(np.float32) does "
            "(neighbours at near-equal distances may differ from the float64 "
            "ones). Fit on float32 data to silence this warning.",
            UserWarning,
            stacklevel=3,
        )
        state = replace(
            state,
            index=index_arrays(state.index.Y.astype(np.float32)),
            targets=None if state.targets is None else state.targets.astype(np.float32),
        )
    return state


def to_tflite(estimator: Any, path: Any = None, *, weights: str = "float32") -> bytes:
    """Convert the estimator's SavedModel to a TFLite flatbuffer (builtin ops)."""
    if weights not in ("float32", "float16"):
        msg = (
            f"weights must be 'float32' or 'float16', got {weights!r}. int8 "
            "quantisation is not offered: it moves the points, and so changes "
            "the neighbours."
        )
        raise ValueError(msg)
    state = _tflite_state(estimator)
    # TFLite has no float64 arithmetic: the re-ranking stays in float32.
    token = WIDE_RERANK.set(False)
    try:
        return _convert(estimator, state, weights, path)
    finally:
        WIDE_RERANK.reset(token)


def _convert(estimator: Any, state: Any, weights: str, path: Any) -> bytes:
    import tensorflow as tf

    module = build_module(estimator, finite=False, state=state)
    # No serving_default: a second key for one function would hold its
    # subgraphs twice in the flatbuffer.
    sigs = signatures(module, default=False)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures=sigs)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=list(sigs)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if weights == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        flatbuffer: bytes = converter.convert()
    if path is not None:
        Path(path).write_bytes(flatbuffer)
    return flatbuffer
