"""The radius-neighbours estimators and per-query radii, scikit-learn as the
oracle on every backend."""

import warnings

import numpy as np
import pytest
from sklearn import neighbors as skn
from sklearn.datasets import load_iris
from sklearn.utils.estimator_checks import parametrize_with_checks

import xplearn
from backends import (
    Backend,
    assert_close,
    assert_equal,
    assert_in_backend,
    ragged_backend,
)
from xplearn.neighbors import (
    KNeighborsClassifier,
    NearestNeighbors,
    RadiusNeighborsClassifier,
    RadiusNeighborsRegressor,
)

_X, _Y = load_iris(return_X_y=True)
X, Y, Q, YQ = _X[1::2], _Y[1::2], _X[::2], _Y[::2]  # train and queries
# Radii off every iris distance (square roots of k/100): no point on the
# boundary, where the rounding of a distance would decide.  Some queries
# have no training point within RADIUS.
RADIUS, WIDE = 0.47, 0.97


def _weight_func(dist):
    # scikit-learn's test callable: an object array of per-query distances.
    with np.errstate(divide="ignore"):
        return dist**2 + 1.0


WEIGHTS = ["uniform", "distance", _weight_func]


def _fit_backend(backend):
    """Where ``X=None`` answers: TensorFlow fit data is held in its compute
    framework (torch), as for the k-neighbours estimators."""
    return Backend("torch") if backend.name == "tensorflow" else backend


@parametrize_with_checks([RadiusNeighborsClassifier(), RadiusNeighborsRegressor()])
def test_sklearn_compatible(estimator, check) -> None:
    with warnings.catch_warnings():
        # scikit-learn's checks query far from the data: NaN, with a warning.
        warnings.filterwarnings("ignore", "One or more samples have no neighbors")
        check(estimator)


@pytest.mark.parametrize("weights", WEIGHTS, ids=["uniform", "distance", "callable"])
@pytest.mark.parametrize("outlier_label", ["most_frequent", 1, -1])
def test_classifier_matches_sklearn(backend, weights, outlier_label) -> None:
    Xb, Qb = backend.asarray(X), backend.asarray(Q)
    ours = RadiusNeighborsClassifier(
        RADIUS, weights=weights, outlier_label=outlier_label
    ).fit(Xb, backend.asarray(Y))
    ref = skn.RadiusNeighborsClassifier(
        RADIUS, weights=weights, outlier_label=outlier_label
    ).fit(X, Y)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Outlier label -1 is not in training")
        want_p, want = ref.predict_proba(Q), ref.predict(Q)
        proba, pred = ours.predict_proba(Qb), ours.predict(Qb)
        score, ref_score = ours.score(Qb, YQ), ref.score(Q, YQ)
    outliers = skn.NearestNeighbors(radius=RADIUS).fit(X).radius_neighbors(Q)[1]
    assert any(len(i) == 0 for i in outliers)
    assert_equal(pred, want, backend, dtype="int64")
    assert_close(proba, want_p, backend, dtype="float64")
    assert ours.outlier_label_ == ref.outlier_label_
    assert score == pytest.approx(ref_score)


def test_classifier_outlier_warning_and_error(backend) -> None:
    Xb, Qb = backend.asarray(X), backend.asarray(Q)
    clf = RadiusNeighborsClassifier(RADIUS, outlier_label=7).fit(Xb, Y)
    with pytest.warns(UserWarning, match="Outlier label 7 is not in training"):
        proba = clf.predict_proba(Qb)
    ref = skn.RadiusNeighborsClassifier(RADIUS, outlier_label=7).fit(X, Y)
    with pytest.warns(UserWarning, match="Outlier label 7"):
        assert_close(proba, ref.predict_proba(Q), backend, dtype="float64")
    with pytest.warns(UserWarning, match="Outlier label 7"):
        assert_equal(clf.predict(Qb), ref.predict(Q), backend, dtype="int64")
    clf = RadiusNeighborsClassifier(RADIUS).fit(Xb, Y)
    with pytest.raises(ValueError, match="No neighbors found for test samples"):
        clf.predict(Qb)


def test_classifier_float32_and_string_labels(backend) -> None:
    X32 = backend.asarray(X, dtype="float32")
    labels = np.array(["setosa", "versicolor", "virginica"])[Y]
    clf = RadiusNeighborsClassifier(RADIUS, outlier_label="most_frequent")
    clf.fit(X32, labels)
    ref = skn.RadiusNeighborsClassifier(RADIUS, outlier_label="most_frequent")
    ref.fit(X, labels)
    pred = clf.predict(backend.asarray(Q, dtype="float32"))
    assert isinstance(pred, np.ndarray)  # strings stay numpy, as scikit-learn
    np.testing.assert_array_equal(pred, ref.predict(Q))
    proba = clf.predict_proba(backend.asarray(Q, dtype="float32"))
    # float32 in, float32 out (DESIGN contract 2; scikit-learn gives float64).
    assert_close(proba, ref.predict_proba(Q), backend, dtype="float32", rtol=1e-6)


def test_classifier_multioutput_and_leave_one_out(backend) -> None:
    y2 = np.stack([Y, (Y + 1) % 3, X[:, 0] > 6], axis=1).astype(np.int64)
    kw = {"radius": RADIUS, "weights": "distance", "outlier_label": [0, 1, 1]}
    ours = RadiusNeighborsClassifier(**kw).fit(backend.asarray(X), y2)
    ref = skn.RadiusNeighborsClassifier(**kw).fit(X, y2)
    assert_equal(ours.predict(backend.asarray(Q)), ref.predict(Q), backend)
    for got, want in zip(
        ours.predict_proba(backend.asarray(Q)), ref.predict_proba(Q), strict=True
    ):
        assert_close(got, want, backend, dtype="float64")
    # X=None: each training point without itself.
    ours_1 = RadiusNeighborsClassifier(WIDE).fit(backend.asarray(X), Y)
    ref_1 = skn.RadiusNeighborsClassifier(WIDE).fit(X, Y)
    assert_equal(ours_1.predict(None), ref_1.predict(None), _fit_backend(backend))
    assert ours_1.score(None, Y) == pytest.approx(ref_1.score(None, Y))


@pytest.mark.parametrize("weights", WEIGHTS, ids=["uniform", "distance", "callable"])
def test_regressor_matches_sklearn(backend, weights) -> None:
    y = X[:, 0] * 2 + X[:, 3]
    ours = RadiusNeighborsRegressor(RADIUS, weights=weights)
    ours.fit(backend.asarray(X), backend.asarray(y))
    ref = skn.RadiusNeighborsRegressor(RADIUS, weights=weights).fit(X, y)
    with pytest.warns(UserWarning, match="no neighbors within specified radius"):
        want = ref.predict(Q)
    assert np.isnan(want).any()
    with pytest.warns(UserWarning, match="no neighbors within specified radius"):
        pred = ours.predict(backend.asarray(Q))
    assert_close(pred, want, backend, dtype="float64")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "One or more samples have no neighbors")
        want, got = ref.predict(None), ours.predict(None)
    assert_close(got, want, _fit_backend(backend), dtype="float64")


def test_regressor_multioutput_float32(backend) -> None:
    y = np.stack([X[:, 0], X[:, 1] * X[:, 2]], axis=1)
    ours = RadiusNeighborsRegressor(WIDE, weights="distance")
    ours.fit(backend.asarray(X, dtype="float32"), y)
    ref = skn.RadiusNeighborsRegressor(WIDE, weights="distance").fit(X, y)
    pred = ours.predict(backend.asarray(Q, dtype="float32"))
    assert_close(pred, ref.predict(Q), backend, dtype="float32", rtol=1e-5)


def test_zero_distance_weights() -> None:
    # A query on a training point: only the points at distance 0 count.
    Xz = np.array([[0.0], [0.0], [1.0], [2.0]])
    yz = np.array([0.0, 1.0, 1.0, 1.0])
    for est, sk in [
        (RadiusNeighborsClassifier, skn.RadiusNeighborsClassifier),
        (RadiusNeighborsRegressor, skn.RadiusNeighborsRegressor),
    ]:
        got = est(1.5, weights="distance").fit(Xz, yz).predict(Xz)
        want = sk(1.5, weights="distance").fit(Xz, yz).predict(Xz)
        np.testing.assert_allclose(xplearn.to_numpy(got), want)


def test_bad_parameters_and_input(backend) -> None:
    Xb = backend.asarray(X)
    with pytest.raises(ValueError, match="'radius' parameter"):
        RadiusNeighborsClassifier(radius=-1.0).fit(Xb, Y)
    with pytest.raises(ValueError, match="weights must be"):
        RadiusNeighborsRegressor(weights="nearest").fit(Xb, Y)
    with pytest.raises(ValueError, match="length of outlier_label"):
        RadiusNeighborsClassifier(outlier_label=[0, 1]).fit(Xb, Y)
    with pytest.raises(TypeError, match="dtype of outlier_label"):
        RadiusNeighborsClassifier(outlier_label="a").fit(Xb, Y)
    with pytest.raises(TypeError, match="supposed to be a scalar"):
        RadiusNeighborsClassifier(outlier_label=[[1, 2]]).fit(Xb, Y)
    clf = RadiusNeighborsClassifier().fit(Xb, Y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(backend.asarray(X[:, :2]))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(backend.asarray(bad))
    with pytest.raises(ValueError, match="get zero weights"):
        RadiusNeighborsClassifier(5.0, weights=lambda d: d * 0).fit(Xb, Y).predict(
            backend.asarray(Q[:2])
        )
    # The radius estimators have no kneighbors, as scikit-learn's.
    assert not hasattr(clf, "kneighbors")


def test_inputs_are_not_written(backend) -> None:
    Xb, Qb, yb = backend.asarray(X), backend.asarray(Q), backend.asarray(Y)
    clf = RadiusNeighborsClassifier(RADIUS, weights="distance", outlier_label=0)
    clf.fit(Xb, yb).predict_proba(Qb)
    reg = RadiusNeighborsRegressor(RADIUS, weights="distance").fit(Xb, yb)
    with pytest.warns(UserWarning, match="no neighbors"):
        reg.predict(Qb)
    NearestNeighbors().fit(Xb).radius_neighbors(Qb, radius=np.full(len(Q), 0.3))
    np.testing.assert_array_equal(xplearn.to_numpy(Xb), X)
    np.testing.assert_array_equal(xplearn.to_numpy(Qb), Q)
    np.testing.assert_array_equal(xplearn.to_numpy(yb), Y)


def test_per_query_radii(backend) -> None:
    radii = np.linspace(0.1013, 0.8013, len(Q))
    nn = NearestNeighbors().fit(backend.asarray(X))
    dist, ind = nn.radius_neighbors(backend.asarray(Q), radius=radii, sort_results=True)
    ref_d, ref_i = (
        skn.NearestNeighbors(algorithm="kd_tree")
        .fit(X)
        .radius_neighbors(Q, radius=radii, sort_results=True)
    )
    assert any(len(r) == 0 for r in ref_i)
    assert any(len(r) > 5 for r in ref_i)
    for d, i, rd, ri in zip(dist, ind, ref_d, ref_i, strict=True):
        order = np.lexsort((ri, rd))  # xplearn breaks ties by the lower index
        assert_equal(i, ri[order], ragged_backend(backend), dtype="int64")
        assert_close(d, rd[order], ragged_backend(backend), dtype="float64")
    # An array of another framework, and a graph with per-query radii.
    G = nn.radius_neighbors_graph(
        backend.asarray(Q), radius=backend.asarray(radii), mode="distance"
    )
    dense = G.to_dense().cpu().numpy() if backend.name == "torch" else G.toarray()
    want = np.zeros((len(Q), len(X)))
    for row, (d, i) in enumerate(zip(ref_d, ref_i, strict=True)):
        want[row, i] = d
    np.testing.assert_allclose(dense, want, rtol=1e-10)
    with pytest.raises(ValueError, match="one radius per query"):
        nn.radius_neighbors(backend.asarray(Q), radius=radii[:3])


def test_radius_estimators_on_torch_keep_the_device(torch) -> None:
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    Xt = torch.asarray(X, device=dev)
    clf = RadiusNeighborsClassifier(WIDE).fit(Xt, torch.asarray(Y, device=dev))
    pred = clf.predict(torch.asarray(Q, device=dev))
    assert pred.device.type == dev
    assert pred.dtype == torch.int64
    assert clf.classes_.device.type == dev
    # Same answer as the k-neighbours vote when every point is in the radius.
    everywhere = RadiusNeighborsClassifier(100.0).fit(Xt, Y)
    knn = KNeighborsClassifier(len(X)).fit(Xt, Y)
    np.testing.assert_allclose(
        everywhere.predict_proba(Xt).cpu().numpy(),
        knn.predict_proba(Xt).cpu().numpy(),
    )


def test_in_backend_helper_sanity(backend) -> None:
    # The classifier's classes_ follow y's framework, as KNeighborsClassifier's.
    clf = RadiusNeighborsClassifier(WIDE).fit(backend.asarray(X), backend.asarray(Y))
    if backend.name not in {"dask", "tensorflow"}:
        assert_in_backend(clf.classes_, backend, "int64")
