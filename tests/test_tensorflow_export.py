"""Fitted estimators exported: tf.Module, SavedModel (loaded without xplearn), TFLite.

The exported answers must be the estimator's: identical neighbour indices,
labels and cluster labels in float32, for batches of 1 and 257 rows, for
estimators fitted on any backend.  TFLite models run on ai-edge-litert's
interpreter (TensorFlow's deprecated one where it is not installed).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xplearn
from tfdata import dataset, reference_workflow, run_tflite
from xplearn.cluster import KMeans, MiniBatchKMeans
from xplearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    NearestNeighbors,
)

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 257)


def _queries(n: int, d: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _estimators(backend, data="gauss"):
    """One of each exported kind, fitted on ``backend``'s arrays."""
    X, _ = dataset(data)
    Xb = backend.asarray(X)
    y = (np.arange(X.shape[0]) * 7) % 3
    return {
        "neighbors": NearestNeighbors(n_neighbors=4).fit(Xb),
        "classifier": KNeighborsClassifier(n_neighbors=5, weights="distance").fit(
            Xb, backend.asarray(y)
        ),
        "regressor": KNeighborsRegressor(n_neighbors=3).fit(
            Xb, backend.asarray(np.sin(X[:, 0]))
        ),
        "kmeans": KMeans(n_clusters=6, random_state=0).fit(Xb),
        "minibatch": MiniBatchKMeans(n_clusters=12, random_state=0).fit(Xb),
    }


def _expected(est, Q):
    """The estimator's own (eager) answers, as numpy, by output name."""
    out = {}
    if hasattr(est, "cluster_centers_"):
        out["predict"] = {"labels": est.predict(Q)}
        out["transform"] = {"distances": est.transform(Q)}
        return {
            m: {k: xplearn.to_numpy(v) for k, v in o.items()} for m, o in out.items()
        }
    dist, ind = est.kneighbors(Q)
    out["kneighbors"] = {"distances": dist, "indices": ind}
    if isinstance(est, KNeighborsClassifier):
        out["predict"] = {"labels": est.predict(Q)}
        out["predict_proba"] = {"probabilities": est.predict_proba(Q)}
    elif isinstance(est, KNeighborsRegressor):
        out["predict"] = {"predictions": est.predict(Q)}
    return {m: {k: xplearn.to_numpy(v) for k, v in o.items()} for m, o in out.items()}


def _compare(got, want, *, exact=("indices", "labels")):
    for name, value in want.items():
        g = np.asarray(got[name])
        if name in exact:
            assert g.dtype in (np.int64, value.dtype), (name, g.dtype)
            np.testing.assert_array_equal(g, value, err_msg=name)
        else:
            assert g.dtype == np.float32, (name, g.dtype)
            np.testing.assert_allclose(g, value, rtol=2e-6, atol=1e-7, err_msg=name)


def test_module_signatures_and_dynamic_batch(tf) -> None:
    from xplearn.tensorflow import to_module

    ests = _estimators(_NumpyBackend())
    names = {
        "neighbors": {"kneighbors"},
        "classifier": {"predict", "predict_proba", "kneighbors"},
        "regressor": {"predict", "kneighbors"},
        "kmeans": {"predict", "transform", "score"},
        "minibatch": {"predict", "transform", "score"},
    }
    for kind, est in ests.items():
        module = to_module(est)
        assert isinstance(module, tf.Module)
        for n in BATCHES:
            Q = _queries(n, 5)
            want = _expected(est, Q)
            for method in names[kind]:
                got = getattr(module, method)(tf.constant(Q))
                assert isinstance(got, dict)
                if method == "score":
                    assert got["score"].dtype == tf.float32
                    assert float(got["score"]) == pytest.approx(est.score(Q), rel=1e-5)
                    continue
                _compare({k: v.numpy() for k, v in got.items()}, want[method])


class _NumpyBackend:
    """The numpy test backend, for tests that fit on numpy whatever is requested."""

    @staticmethod
    def asarray(a):
        return np.array(a)


def test_saved_model_loads_without_xplearn(tf, tmp_path) -> None:
    from xplearn.tensorflow import save

    ests = _estimators(_NumpyBackend(), data="offset")
    Q = {n: 1e4 + _queries(n, 3) for n in BATCHES}
    want = {}
    for kind, est in ests.items():
        save(est, tmp_path / kind)
        for n in BATCHES:
            for method, outs in _expected(est, Q[n]).items():
                for name, value in outs.items():
                    want[f"{kind}/{n}/{method}/{name}"] = value
    np.savez(tmp_path / "queries.npz", **{str(n): q for n, q in Q.items()})
    code = f"""
import sys
sys.modules["xplearn"] = None  # any import of xplearn now fails
import numpy as np, tensorflow as tf
Q = np.load({str(tmp_path / "queries.npz")!r})
out = {{}}
for kind in {list(ests)!r}:
    model = tf.saved_model.load({str(tmp_path)!r} + "/" + kind)
    for n in {list(BATCHES)!r}:
        for method, fn in model.signatures.items():
            for name, value in fn(X=tf.constant(Q[str(n)])).items():
                out[f"{{kind}}/{{n}}/{{method}}/{{name}}"] = value.numpy()
np.savez({str(tmp_path / "out.npz")!r}, **out)
assert "xplearn.tensorflow" not in sys.modules
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    got = np.load(tmp_path / "out.npz")
    for key, value in want.items():
        _compare({key.rpartition("/")[2]: got[key]}, {key.rpartition("/")[2]: value})
    # KMeans' score signature answers the estimator's score, batch by batch.
    for kind in ("kmeans", "minibatch"):
        for n in BATCHES:
            score = float(got[f"{kind}/{n}/score/score"])
            assert score == pytest.approx(ests[kind].score(Q[n]), rel=1e-5), (kind, n)
    # serving_default is the first method: predict, or kneighbors.
    assert "neighbors/1/serving_default/indices" in got
    assert "classifier/1/serving_default/labels" in got


def test_tflite_equals_estimator(tf, backend) -> None:
    from xplearn.tensorflow import to_tflite

    for kind, est in _estimators(backend).items():
        flatbuffer = to_tflite(est)
        for n in BATCHES:
            Q = _queries(n, 5, seed=n)
            for method, want in _expected(est, Q).items():
                _compare(run_tflite(flatbuffer, method, Q), want)
        if kind == "kmeans":
            got = run_tflite(flatbuffer, "score", Q)["score"]
            assert float(got) == pytest.approx(est.score(Q), rel=1e-5)


def test_tflite_runs_on_litert(tf) -> None:
    """The TFLite tests run on LiteRT (ai-edge-litert), the maintained runtime,
    wherever it has wheels: TensorFlow's deprecated interpreter is the
    fallback only where ai-edge-litert cannot be installed."""
    import importlib.util
    import platform

    from tfdata import interpreter
    from xplearn.tensorflow import to_tflite

    if importlib.util.find_spec("ai_edge_litert") is None:
        if sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64"):
            pytest.fail("ai-edge-litert has wheels here: pip install ai-edge-litert")
        pytest.skip("ai-edge-litert has no wheel for this platform")
    X, _ = dataset("gauss")
    runner = interpreter(to_tflite(NearestNeighbors(n_neighbors=2).fit(X)))
    assert type(runner).__module__.startswith("ai_edge_litert"), type(runner)


def _equal_up_to_float32_ties(got: Any, want: Any, dist: Any) -> None:
    """Indices equal, except in runs of neighbours whose distances lie within
    float32's rounding of each other: the eager search orders those by
    float64 sums, a TFLite model (no float64 arithmetic) by float32 sums, the
    lower index first among equal ones.  Such a run holds the same points,
    unless it reaches the k-th neighbour, where the next one may take a
    place."""
    k = want.shape[1]
    close = np.diff(dist, axis=1) <= 8 * np.finfo(np.float32).eps * dist[:, 1:]
    for r in range(want.shape[0]):
        start = 0
        for j in range(1, k + 1):
            if j < k and close[r, j - 1]:
                continue
            if j - start == 1:
                assert got[r, start] == want[r, start], (r, start)
            elif j < k:
                assert set(got[r, start:j]) == set(want[r, start:j]), (r, start, j)
            start = j
    assert np.mean(np.all(got == want, axis=1)) >= 0.9


@pytest.mark.parametrize("data", ["grid", "duplicates", "offset", "huge"])
def test_tflite_adversarial_data(tf, data) -> None:
    """Ties (TFLite's TOPK_V2 keeps the lower index first), offsets, scaling."""
    from xplearn.tensorflow import to_tflite

    X, Q = dataset(data)
    nn = NearestNeighbors(n_neighbors=6).fit(X)
    flatbuffer = to_tflite(nn)
    got = run_tflite(flatbuffer, "kneighbors", Q)
    dist, ind = nn.kneighbors(Q)
    np.testing.assert_allclose(got["distances"], dist, rtol=2e-6)
    _equal_up_to_float32_ties(got["indices"], ind, dist)
    # A batch scaled far from the fitted data takes the run-time rescaling.
    if data == "grid":
        far = Q * 2.0**70
        np.testing.assert_array_equal(
            run_tflite(flatbuffer, "kneighbors", far)["indices"], nn.kneighbors(far)[1]
        )


def test_tflite_reference_workflow_float16(tf) -> None:
    from xplearn.tensorflow import to_tflite

    X_train, X_test, y_train, y_test = reference_workflow()
    clf = KNeighborsClassifier(n_neighbors=3).fit(X_train, y_train)
    full = run_tflite(to_tflite(clf), "predict", X_test)["labels"]
    half = run_tflite(to_tflite(clf, weights="float16"), "predict", X_test)["labels"]
    np.testing.assert_array_equal(full, clf.predict(X_test))
    assert np.mean(half == full) >= 0.99
    assert np.mean(full == y_test) == pytest.approx(0.943, abs=5e-4)


def test_tflite_errors_and_float64(tf, tmp_path) -> None:
    from sklearn.exceptions import NotFittedError

    from xplearn.tensorflow import to_module, to_tflite

    X, Q = dataset("gauss")
    with pytest.raises(NotFittedError):
        to_tflite(KMeans())
    with pytest.raises(ValueError, match=r"'manhattan', which has no TensorFlow graph"):
        to_module(NearestNeighbors(metric="manhattan").fit(X))
    with pytest.raises(TypeError, match="takes fitted xplearn NearestNeighbors"):
        to_module(object())
    words = np.array(["ant", "bee"])[np.arange(300) % 2]
    clf = KNeighborsClassifier(n_neighbors=3).fit(X, words)
    with pytest.raises(ValueError, match=r"np.searchsorted\(classes, y\)"):
        to_tflite(clf)
    with pytest.raises(ValueError, match="int8 quantisation is not offered"):
        to_tflite(NearestNeighbors().fit(X), weights="int8")
    # String labels are fine in TF itself.
    labels = to_module(clf).predict(tf.constant(Q))["labels"].numpy().astype(str)
    np.testing.assert_array_equal(labels, clf.predict(Q))
    # float64: cast to float32, and said so; answers as the float32 fit.
    reg = KNeighborsRegressor(n_neighbors=3).fit(X.astype(np.float64), X[:, 0])
    with pytest.warns(UserWarning, match="cast to float32"):
        flatbuffer = to_tflite(reg, tmp_path / "reg.tflite")
    assert (tmp_path / "reg.tflite").read_bytes() == flatbuffer
    ref = KNeighborsRegressor(n_neighbors=3).fit(X, X[:, 0])
    got = run_tflite(flatbuffer, "predict", Q)["predictions"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref.predict(Q), rtol=1e-6)


def test_example_script(tf, tmp_path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "tflite_knn.py"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    print(out)
    acc = dict(re.findall(r"accuracy (TF|TFLite): +([0-9.]+)", out))
    assert acc["TF"] == acc["TFLite"] == "0.943"
    assert "neighbours identical: True" in out
    assert (tmp_path / "knn.tflite").stat().st_size > 0


def test_docs_page_examples_run(tf) -> None:
    """Every python block of docs/tensorflow.rst runs, in order, in one namespace."""
    text = (ROOT / "docs" / "tensorflow.rst").read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        code = "\n".join(line[4:] for line in block.splitlines())
        exec(compile(code, "docs/tensorflow.rst", "exec"), namespace)
