"""The neighbours estimators: scikit-learn's checks, and scikit-learn as the
oracle on every backend."""

import pickle

import numpy as np
import pytest
import sklearn
from scipy.spatial.distance import cdist
from sklearn import neighbors as skn
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import xplearn
from backends import assert_close, assert_equal, assert_in_backend, ragged_backend
from xplearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    NearestNeighbors,
)

DATASETS = {
    "iris": load_iris(return_X_y=True),
    "wine": load_wine(return_X_y=True),
    "digits": tuple(a[:600] for a in load_digits(return_X_y=True)),
}


@parametrize_with_checks(
    [NearestNeighbors(), KNeighborsClassifier(), KNeighborsRegressor()]
)
def test_sklearn_compatible(estimator, check) -> None:
    check(estimator)


def _untied(Q, X, k):
    """Queries whose k-th and (k+1)-th exact distances differ (no tie at the
    boundary), where any exact search must pick the same neighbours."""
    d = np.sort(cdist(Q, X), axis=1)
    return ~np.isclose(d[:, k - 1], d[:, k], rtol=1e-9, atol=1e-12)


def _split(name):
    X, y = DATASETS[name]
    return X[1::2], y[1::2], X[::2]  # train, labels, queries


@pytest.mark.parametrize("data", list(DATASETS))
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_classifier_matches_sklearn(backend, data, weights) -> None:
    X, y, Q = _split(data)
    ours = KNeighborsClassifier(n_neighbors=5, weights=weights).fit(
        backend.asarray(X), y
    )
    ref = skn.KNeighborsClassifier(n_neighbors=5, weights=weights).fit(X, y)
    ok = _untied(Q, X, 5)
    assert ok.mean() > 0.5
    pred = ours.predict(backend.asarray(Q))
    assert_in_backend(pred, backend, "int64")
    np.testing.assert_array_equal(xplearn.to_numpy(pred)[ok], ref.predict(Q)[ok])
    proba = ours.predict_proba(backend.asarray(Q))
    assert_in_backend(proba, backend, "float64")
    np.testing.assert_allclose(
        xplearn.to_numpy(proba)[ok], ref.predict_proba(Q)[ok], rtol=1e-10
    )


@pytest.mark.parametrize("data", list(DATASETS))
def test_kneighbors_matches_sklearn(backend, data) -> None:
    X, _, Q = _split(data)
    dist, ind = (
        NearestNeighbors(n_neighbors=4)
        .fit(backend.asarray(X))
        .kneighbors(backend.asarray(Q))
    )
    _ref_d, ref_i = skn.NearestNeighbors(n_neighbors=4).fit(X).kneighbors(Q)
    assert_close(
        dist, np.sort(cdist(Q, X), axis=1)[:, :4], backend, dtype="float64", rtol=1e-10
    )
    assert_in_backend(ind, backend, "int64")
    ok = _untied(Q, X, 4) & ~np.any(
        np.diff(np.sort(cdist(Q, X), axis=1)[:, :5], axis=1) == 0, axis=1
    )
    np.testing.assert_array_equal(xplearn.to_numpy(ind)[ok], ref_i[ok])


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_regressor_matches_sklearn(backend, weights) -> None:
    X, _, Q = _split("wine")
    y = X[:, 0] * 2 + X[:, 3]
    ok = _untied(Q, X, 5)
    ours = KNeighborsRegressor(weights=weights).fit(
        backend.asarray(X), backend.asarray(y)
    )
    pred = ours.predict(backend.asarray(Q))
    ref = skn.KNeighborsRegressor(weights=weights).fit(X, y).predict(Q)
    assert_in_backend(pred, backend, "float64")
    np.testing.assert_allclose(xplearn.to_numpy(pred)[ok], ref[ok], rtol=1e-10)


def test_multioutput(backend) -> None:
    X, y, Q = _split("iris")
    Y2 = np.stack([y, (X[:, 0] > 5.8).astype(np.int64)], axis=1)
    ok = _untied(Q, X, 5)
    clf = KNeighborsClassifier().fit(backend.asarray(X), backend.asarray(Y2))
    pred = clf.predict(backend.asarray(Q))
    assert_in_backend(pred, backend)
    ref = skn.KNeighborsClassifier().fit(X, Y2)
    np.testing.assert_array_equal(xplearn.to_numpy(pred)[ok], ref.predict(Q)[ok])
    probas = clf.predict_proba(backend.asarray(Q))
    assert isinstance(probas, list)
    assert len(probas) == 2
    reg = KNeighborsRegressor().fit(backend.asarray(X), backend.asarray(X[:, :2]))
    out = reg.predict(backend.asarray(Q))
    np.testing.assert_allclose(
        xplearn.to_numpy(out)[ok],
        skn.KNeighborsRegressor().fit(X, X[:, :2]).predict(Q)[ok],
    )


@pytest.mark.parametrize(
    "labels",
    ["strings", "bools", "floats", "negative ints"],
    ids=lambda s: s.replace(" ", "-"),
)
def test_label_types(backend, labels) -> None:
    X, y, Q = _split("iris")
    lab = {
        "strings": np.array(["setosa", "versicolor", "virginica"])[y],
        "bools": y == 1,
        "floats": y.astype(np.float64) * 2.0,  # integral: labels, not a target
        "negative ints": y - 7,
    }[labels]
    ok = _untied(Q, X, 5)
    clf = KNeighborsClassifier().fit(backend.asarray(X), lab)
    ref = skn.KNeighborsClassifier().fit(X, lab)
    np.testing.assert_array_equal(xplearn.to_numpy(clf.classes_), ref.classes_)
    pred = clf.predict(backend.asarray(Q))
    if labels == "strings":
        assert isinstance(pred, np.ndarray)  # non-numeric labels come back as numpy
    else:
        assert_in_backend(pred, backend)
    np.testing.assert_array_equal(xplearn.to_numpy(pred)[ok], ref.predict(Q)[ok])


def test_numeric_labels_as_tensor_keep_device(backend) -> None:
    X, y, Q = _split("iris")
    clf = KNeighborsClassifier().fit(backend.asarray(X), backend.asarray(y))
    if backend.name not in {"tensorflow", "dask"}:  # TF computes on torch; dask on host
        assert_in_backend(clf.classes_, backend)
    assert_in_backend(clf.predict(backend.asarray(Q)), backend)


def test_kneighbors_x_none_excludes_self(backend) -> None:
    X = DATASETS["wine"][0]
    d, i = NearestNeighbors(n_neighbors=3).fit(backend.asarray(X)).kneighbors()
    ref_d, _ref_i = skn.NearestNeighbors(n_neighbors=3).fit(X).kneighbors()
    assert not np.any(xplearn.to_numpy(i) == np.arange(len(X))[:, None])
    np.testing.assert_allclose(xplearn.to_numpy(d), ref_d, rtol=1e-9)


def test_kneighbors_graph(backend) -> None:
    X, _, Q = _split("wine")
    nn = NearestNeighbors(n_neighbors=3).fit(backend.asarray(X))
    G = nn.kneighbors_graph(backend.asarray(Q), mode="distance")
    ref = (
        skn.NearestNeighbors(n_neighbors=3).fit(X).kneighbors_graph(Q, mode="distance")
    )
    dense = G.to_dense().cpu().numpy() if backend.name == "torch" else G.toarray()
    np.testing.assert_allclose(dense, ref.toarray(), rtol=1e-9)


def test_radius_neighbors(backend) -> None:
    X, _, Q = _split("iris")
    nn = NearestNeighbors(radius=0.6).fit(backend.asarray(X))
    dist, ind = nn.radius_neighbors(backend.asarray(Q[:20]), sort_results=True)
    ref_d, ref_i = (
        skn.NearestNeighbors(radius=0.6)
        .fit(X)
        .radius_neighbors(Q[:20], sort_results=True)
    )
    for a, b, c, e in zip(dist, ind, ref_d, ref_i, strict=True):
        assert_in_backend(b, ragged_backend(backend), "int64")
        np.testing.assert_allclose(xplearn.to_numpy(a), c, rtol=1e-9)
        assert sorted(xplearn.to_numpy(b)) == sorted(e)
    G = nn.radius_neighbors_graph(backend.asarray(Q), mode="distance")
    R = (
        skn.NearestNeighbors(radius=0.6)
        .fit(X)
        .radius_neighbors_graph(Q, mode="distance")
    )
    dense = G.to_dense().cpu().numpy() if backend.name == "torch" else G.toarray()
    np.testing.assert_allclose(dense, R.toarray(), rtol=1e-9)


def test_query_from_another_framework(backend) -> None:
    """Fitted on numpy, asked in the backend: answered in the backend."""
    X, y, Q = _split("iris")
    clf = KNeighborsClassifier().fit(X, y)
    pred = clf.predict(backend.asarray(Q))
    assert_equal(pred, clf.predict(Q), backend)


def test_bad_input(backend) -> None:
    X, y, Q = _split("iris")
    with pytest.raises(NotFittedError):
        KNeighborsClassifier().predict(backend.asarray(Q))
    clf = KNeighborsClassifier().fit(backend.asarray(X), y)
    with pytest.raises(
        ValueError, match="X has 3 features, but KNeighborsClassifier is expecting 4"
    ):
        clf.predict(backend.asarray(Q[:, :3]))
    bad = Q.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict(backend.asarray(bad))
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
        KNeighborsClassifier(n_neighbors=500).fit(backend.asarray(X), y).predict(
            backend.asarray(Q)
        )
    with pytest.raises(ValueError, match="'algorithm' parameter"):
        KNeighborsClassifier(algorithm="annoy").fit(backend.asarray(X), y)
    with pytest.raises(ValueError, match="'leaf_size' parameter"):
        KNeighborsClassifier(leaf_size=0).fit(backend.asarray(X), y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        KNeighborsClassifier().fit(backend.asarray(X), y[:10])
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        KNeighborsClassifier().fit(backend.asarray(X), X[:, 0])


@pytest.mark.skipif(
    tuple(int(v) for v in sklearn.__version__.split(".")[:2]) < (1, 9),
    reason="scikit-learn 1.6's GridSearchCV passes a torch device to numpy "
    "(sklearn/utils/_array_api.py asarray); 1.9 works",
)
def test_pipeline_and_grid_search_on_torch(torch) -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = DATASETS["wine"]
    Xt, yt = torch.asarray(X), torch.asarray(y)
    pipe = Pipeline(
        [("scale", xplearn.wrap(StandardScaler())), ("knn", KNeighborsClassifier())]
    )
    pipe.fit(Xt, yt)
    assert isinstance(pipe.predict(Xt), torch.Tensor)
    assert pipe.score(Xt, yt) > 0.9
    gs = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": [1, 3, 7]}, cv=3).fit(
        Xt, yt
    )
    ref = GridSearchCV(
        skn.KNeighborsClassifier(), {"n_neighbors": [1, 3, 7]}, cv=3
    ).fit(X, y)
    assert gs.best_params_ == ref.best_params_
    assert isinstance(gs.predict(Xt), torch.Tensor)


def test_pickle_and_clone_torch_state(torch) -> None:
    X, y, Q = _split("iris")
    clf = KNeighborsClassifier(n_neighbors=3).fit(torch.asarray(X), torch.asarray(y))
    again = pickle.loads(pickle.dumps(clf))
    assert torch.equal(again.predict(torch.asarray(Q)), clf.predict(torch.asarray(Q)))
    assert clone(clf).get_params() == clf.get_params()


@pytest.mark.parametrize("algorithm", ["auto", "ball_tree", "kd_tree", "brute"])
def test_every_algorithm_is_exact_brute_force(backend, algorithm) -> None:
    rng = np.random.default_rng(0)
    X, y, Q = rng.random((60, 4)), rng.integers(0, 3, 60), rng.random((20, 4))
    ref = skn.KNeighborsClassifier(algorithm="brute").fit(X, y)  # ties by index
    clf = KNeighborsClassifier(algorithm=algorithm, leaf_size=5)
    clf.fit(backend.asarray(X), y)
    assert clf._fit_method == "brute"
    dist, ind = clf.kneighbors(backend.asarray(Q))
    assert_in_backend(ind, backend)
    ref_d, ref_i = ref.kneighbors(Q)
    assert_equal(ind, ref_i, backend)
    assert_close(dist, ref_d, backend)


def test_minkowski_p_below_one(backend) -> None:
    rng = np.random.default_rng(0)
    X, Q = rng.random((60, 4)), rng.random((20, 4))
    nn = NearestNeighbors(n_neighbors=3, p=0.5)
    with pytest.warns(UserWarning, match="for 0 < p < 1, Minkowski metrics are not"):
        nn.fit(backend.asarray(X))
    dist, ind = nn.kneighbors(backend.asarray(Q))
    D = cdist(Q, X, "minkowski", p=0.5)
    ref_i = np.argsort(D, axis=1, kind="stable")[:, :3]
    assert_equal(ind, ref_i, backend)
    assert_close(dist, np.take_along_axis(D, ref_i, axis=1), backend)
    with pytest.raises(ValueError, match='algorithm="kd_tree" does not support 0 < p'):
        NearestNeighbors(p=0.5, algorithm="kd_tree").fit(backend.asarray(X))


def test_p_in_metric_params_warns_and_wins(backend) -> None:
    X, _, _ = _split("iris")
    nn = NearestNeighbors(metric_params={"p": 1})
    with pytest.warns(SyntaxWarning, match="Parameter p is found in metric_params"):
        nn.fit(backend.asarray(X))
    assert nn.effective_metric_ == "manhattan"


@pytest.mark.parametrize(
    ("metric", "params"),
    [
        ("braycurtis", None),
        ("seuclidean", {"V": np.arange(1.0, 5.0)}),
        ("mahalanobis", {"VI": np.eye(4) * 2.0}),
        ("minkowski", {"w": np.arange(1.0, 5.0)}),
        ("correlation", None),
    ],
)
def test_general_metrics_match_sklearn(backend, metric, params) -> None:
    rng = np.random.default_rng(0)
    X, Q = rng.random((60, 4)), rng.random((20, 4))
    ref = skn.NearestNeighbors(
        n_neighbors=4, metric=metric, metric_params=params, algorithm="brute"
    ).fit(X)
    nn = NearestNeighbors(n_neighbors=4, metric=metric, metric_params=params)
    nn.fit(backend.asarray(X))
    assert nn.effective_metric_ == metric
    dist, ind = nn.kneighbors(backend.asarray(Q))
    ref_d, ref_i = ref.kneighbors(Q)
    assert_equal(ind, ref_i, backend)
    assert_close(dist, ref_d, backend)


def test_precomputed_matches_features(backend) -> None:
    rng = np.random.default_rng(0)
    X, Q = rng.random((40, 3)), rng.random((10, 3))
    D_fit, D_q = cdist(X, X), cdist(Q, X)
    nn = NearestNeighbors(n_neighbors=3, metric="precomputed")
    nn.fit(backend.asarray(D_fit))
    ref = skn.NearestNeighbors(n_neighbors=3).fit(X)
    assert_equal(nn.kneighbors(backend.asarray(D_q))[1], ref.kneighbors(Q)[1], backend)
    # X=None answers in the fit state's framework (numpy for dask).
    np.testing.assert_array_equal(
        xplearn.to_numpy(nn.kneighbors()[1]), ref.kneighbors()[1]
    )
    with pytest.raises(ValueError, match="Negative values in data passed"):
        nn.fit(backend.asarray(-D_fit))


def test_leave_one_out_when_x_is_none(backend) -> None:
    X, y, _ = _split("iris")
    for ours, ref in [
        (KNeighborsClassifier(3), skn.KNeighborsClassifier(3)),
        (KNeighborsRegressor(3), skn.KNeighborsRegressor(3)),
    ]:
        ours.fit(backend.asarray(X), y)
        ref.fit(X, y)
        np.testing.assert_allclose(
            xplearn.to_numpy(ours.predict(None)), ref.predict(None)
        )
        assert ours.score(None, y) == pytest.approx(ref.score(None, y))
    proba = KNeighborsClassifier(3).fit(backend.asarray(X), y).predict_proba(None)
    ref_p = skn.KNeighborsClassifier(3).fit(X, y).predict_proba(None)
    np.testing.assert_allclose(xplearn.to_numpy(proba), ref_p)


def test_more_duplicates_than_neighbors_drops_the_first(backend) -> None:
    X = backend.asarray(np.ones((3, 1)))
    nn = NearestNeighbors(n_neighbors=1).fit(X)
    ind = nn.kneighbors(return_distance=False)
    np.testing.assert_array_equal(xplearn.to_numpy(ind), [[1], [0], [1]])
    graph = nn.kneighbors_graph(mode="connectivity")
    dense = graph.to_dense() if hasattr(graph, "to_dense") else graph.toarray()
    ref = skn.NearestNeighbors(n_neighbors=1).fit(np.ones((3, 1))).kneighbors_graph()
    np.testing.assert_array_equal(xplearn.to_numpy(dense), ref.toarray())


def test_bad_input_says_what_scikit_learn_says(backend) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.random((10, 2)), np.array([0, 1] * 5)
    nn = NearestNeighbors().fit(backend.asarray(X))
    with pytest.raises(ValueError, match="return_distance must be True"):
        nn.radius_neighbors(
            backend.asarray(X), sort_results=True, return_distance=False
        )
    with pytest.raises(ValueError, match='Unsupported mode, must be one of "conn'):
        nn.kneighbors_graph(backend.asarray(X), mode="blah")
    with pytest.raises(ValueError, match="Found array with dim 3"):
        KNeighborsClassifier().fit(X[:, :, None], y)
    clf = KNeighborsClassifier(weights=np.zeros_like)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="getting zero weights"):
        clf.predict_proba(X)


@pytest.mark.parametrize("cls", [KNeighborsClassifier, KNeighborsRegressor])
def test_precomputed_cross_validation(cls) -> None:
    """A precomputed X is samples × samples: cross-validation must cut its
    columns as well as its rows (the pairwise tag), and then scores what the
    features score (before the tag: an IndexError in predict)."""
    from sklearn.model_selection import cross_val_score

    X, y = load_iris(return_X_y=True)
    D = cdist(X, X)
    assert cls(metric="precomputed").__sklearn_tags__().input_tags.pairwise
    assert not cls().__sklearn_tags__().input_tags.pairwise
    on_d = cross_val_score(cls(metric="precomputed"), D, y, cv=5)
    on_x = cross_val_score(cls(), X, y, cv=5)
    np.testing.assert_allclose(on_d, on_x)
