"""xplearn.wrap: any scikit-learn estimator with tensors in and out."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import xplearn
from backends import assert_close, assert_equal

X, Y = load_iris(return_X_y=True)


def test_logistic_regression(backend) -> None:
    ref = LogisticRegression(max_iter=1000).fit(X, Y)
    w = xplearn.wrap(LogisticRegression(max_iter=1000)).fit(
        backend.asarray(X), backend.asarray(Y)
    )
    assert_equal(w.predict(backend.asarray(X)), ref.predict(X), backend)
    assert_close(
        w.predict_proba(backend.asarray(X)), ref.predict_proba(X), backend, rtol=1e-6
    )
    np.testing.assert_allclose(w.coef_, ref.coef_, rtol=1e-6)
    assert w.score(backend.asarray(X), Y) == pytest.approx(ref.score(X, Y))


def test_pca_and_scaler(backend) -> None:
    out = xplearn.wrap(PCA(n_components=2)).fit_transform(backend.asarray(X))
    assert_close(
        out,
        PCA(n_components=2).fit_transform(X),
        backend,
        dtype="float64",
        rtol=1e-6,
        atol=1e-9,
    )
    s = xplearn.wrap(StandardScaler()).fit(backend.asarray(X))
    back = s.inverse_transform(s.transform(backend.asarray(X)))
    assert_close(back, X, backend, rtol=1e-10)


def test_methods_follow_the_estimator() -> None:
    w = xplearn.wrap(StandardScaler())
    assert hasattr(w, "transform")
    assert not hasattr(w, "predict")


def test_nested_params() -> None:
    w = xplearn.wrap(LogisticRegression())
    w.set_params(estimator__C=0.5)
    assert w.get_params()["estimator__C"] == 0.5


def test_tensorflow_in_tensorflow_out(tf) -> None:
    out = xplearn.wrap(PCA(n_components=2)).fit_transform(tf.constant(X))
    assert isinstance(out, tf.Tensor)
    pred = (
        xplearn.wrap(LogisticRegression(max_iter=1000))
        .fit(tf.constant(X), Y)
        .predict(tf.constant(X))
    )
    assert isinstance(pred, tf.Tensor)


def test_not_fitted() -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        xplearn.wrap(StandardScaler()).transform(X)
