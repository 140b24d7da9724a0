"""Neighbour graphs and the neighbours transformers, scikit-learn as the oracle
on every backend."""

import numpy as np
import pytest
from sklearn import neighbors as skn
from sklearn.datasets import load_wine
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import xplearn
from backends import Backend, assert_in_backend, ragged_backend
from xplearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsTransformer,
    NearestNeighbors,
    RadiusNeighborsClassifier,
    RadiusNeighborsTransformer,
    kneighbors_graph,
    radius_neighbors_graph,
)

_X = load_wine(return_X_y=True)[0]
_X = (_X - _X.mean(axis=0)) / _X.std(axis=0)
X, Q = _X[1::2], _X[::2]
RADIUS = 3.0


def _dense(G, backend):
    """A graph as a host float64 array, after checking its kind and place.

    torch queries give torch sparse CSR tensors on their device; every other
    framework a scipy CSR matrix (sparse arrays are not in the standard).
    """
    if backend.name == "torch":
        import torch

        assert G.layout == torch.sparse_csr
        assert G.device == backend.device
        return G.to_dense().cpu().numpy().astype(np.float64)
    assert G.format == "csr"
    return G.toarray()


@parametrize_with_checks([KNeighborsTransformer(), RadiusNeighborsTransformer()])
def test_sklearn_compatible(estimator, check) -> None:
    check(estimator)


@pytest.mark.parametrize("mode", ["connectivity", "distance"])
@pytest.mark.parametrize("include_self", [False, True, "auto"])
def test_graph_functions_match_sklearn(backend, mode, include_self) -> None:
    Xb = backend.asarray(X)
    kw = {"mode": mode, "include_self": include_self}
    G = kneighbors_graph(Xb, 4, **kw)
    np.testing.assert_allclose(
        _dense(G, backend), skn.kneighbors_graph(X, 4, **kw).toarray(), rtol=1e-10
    )
    R = radius_neighbors_graph(Xb, RADIUS, **kw)
    np.testing.assert_allclose(
        _dense(R, backend),
        skn.radius_neighbors_graph(X, RADIUS, **kw).toarray(),
        rtol=1e-10,
    )


def test_graph_functions_take_a_fitted_estimator(backend) -> None:
    nn = NearestNeighbors(n_neighbors=3, radius=RADIUS).fit(backend.asarray(X))
    ref = skn.NearestNeighbors(n_neighbors=3, radius=RADIUS).fit(X)
    # The graph follows the fit data, which TensorFlow's is held as torch.
    if backend.name == "tensorflow":
        backend = Backend("torch")
    np.testing.assert_allclose(
        _dense(kneighbors_graph(nn, 3, mode="distance"), backend),
        skn.kneighbors_graph(ref, 3, mode="distance").toarray(),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        _dense(radius_neighbors_graph(nn, RADIUS), backend),
        skn.radius_neighbors_graph(ref, RADIUS).toarray(),
    )
    with pytest.raises(ValueError, match="Got manhattan for metric"):
        kneighbors_graph(nn, 3, metric="manhattan")


def test_bad_modes_name_the_valid_ones(backend) -> None:
    Xb = backend.asarray(X)
    for call in (
        lambda: kneighbors_graph(Xb, 3, mode="blah"),
        lambda: radius_neighbors_graph(Xb, RADIUS, mode="blah"),
        lambda: NearestNeighbors().fit(Xb).radius_neighbors_graph(Xb, mode="blah"),
    ):
        with pytest.raises(ValueError, match='"connectivity", or "distance"'):
            call()
    for est in (KNeighborsTransformer, RadiusNeighborsTransformer):
        with pytest.raises(ValueError, match=r"among \{'connectivity', 'distance'\}"):
            est(mode="blah").fit(Xb)
    with pytest.raises(ValueError, match="include_self"):
        kneighbors_graph(Xb, 3, include_self="yes")
    with pytest.raises(ValueError, match="Expected n_neighbors > 0"):
        kneighbors_graph(Xb, 0)
    with pytest.raises(ValueError, match="'radius' parameter"):
        RadiusNeighborsTransformer(radius=-1.0).fit(Xb)


@pytest.mark.parametrize("mode", ["connectivity", "distance"])
def test_transformers_match_sklearn(backend, mode) -> None:
    Xb, Qb = backend.asarray(X), backend.asarray(Q)
    for ours, ref in [
        (
            KNeighborsTransformer(n_neighbors=4, mode=mode),
            skn.KNeighborsTransformer(n_neighbors=4, mode=mode),
        ),
        (
            RadiusNeighborsTransformer(radius=RADIUS, mode=mode),
            skn.RadiusNeighborsTransformer(radius=RADIUS, mode=mode),
        ),
    ]:
        np.testing.assert_allclose(
            _dense(ours.fit_transform(Xb), backend),
            ref.fit_transform(X).toarray(),
            rtol=1e-10,
        )
        G = ours.transform(Qb)
        want = ref.transform(Q)
        np.testing.assert_allclose(_dense(G, backend), want.toarray(), rtol=1e-10)
        # Same stored entries (the explicit zero of each sample to itself too).
        nnz = G.values().shape[0] if backend.name == "torch" else G.nnz
        assert nnz == want.nnz
        names = ours.get_feature_names_out()
        np.testing.assert_array_equal(names, ref.get_feature_names_out())


def test_radius_transformer_rows_are_sorted(backend) -> None:
    G = RadiusNeighborsTransformer(radius=RADIUS).fit_transform(backend.asarray(X))
    if backend.name == "torch":
        crow = G.crow_indices().cpu().numpy()
        data = G.values().cpu().numpy()
    else:
        crow, data = G.indptr, G.data
    for i in range(len(crow) - 1):
        row = data[crow[i] : crow[i + 1]]
        assert np.all(np.diff(row) >= 0)


def test_distance_graph_dtype_and_inputs_not_written(backend) -> None:
    X32 = backend.asarray(X, dtype="float32")
    G = KNeighborsTransformer(n_neighbors=3).fit_transform(X32)
    R = radius_neighbors_graph(X32, RADIUS, mode="distance")
    for graph in (G, R):
        if backend.name == "torch":
            # torch graphs keep the data's dtype; scipy ones are float64, as
            # scikit-learn's connectivity graphs.
            assert graph.dtype == backend.module.float32
        else:
            assert graph.dtype == np.float64
    np.testing.assert_array_equal(xplearn.to_numpy(X32), X.astype(np.float32))


def test_pipeline_to_precomputed_sklearn_estimator() -> None:
    """scikit-learn's own use: a transformer ahead of ``metric="precomputed"``."""
    y = (X[:, 0] > 0).astype(int)
    chained = make_pipeline(
        KNeighborsTransformer(n_neighbors=10, mode="distance"),
        skn.KNeighborsClassifier(n_neighbors=5, metric="precomputed"),
    )
    direct = skn.KNeighborsClassifier(n_neighbors=5).fit(X, y)
    np.testing.assert_array_equal(chained.fit(X, y).predict(Q), direct.predict(Q))
    kw = {"outlier_label": "most_frequent"}
    radius_chain = make_pipeline(
        RadiusNeighborsTransformer(radius=RADIUS * 2),
        skn.RadiusNeighborsClassifier(RADIUS, metric="precomputed", **kw),
    )
    direct_r = skn.RadiusNeighborsClassifier(RADIUS, **kw).fit(X, y)
    np.testing.assert_array_equal(
        radius_chain.fit(X, y).predict(Q), direct_r.predict(Q)
    )


def test_graph_rows_in_backend(backend) -> None:
    """The per-query arrays behind the graphs are in the query's backend."""
    dist, ind = (
        NearestNeighbors(radius=RADIUS)
        .fit(backend.asarray(X))
        .radius_neighbors(backend.asarray(Q[:3]))
    )
    assert_in_backend(ind[0], ragged_backend(backend), "int64")
    assert_in_backend(dist[0], ragged_backend(backend), "float64")


@pytest.mark.parametrize("kind", ["k", "radius"])
def test_pipeline_to_xplearn_precomputed(backend, kind) -> None:
    """A transformer's sparse graph feeds xplearn's own precomputed estimators.

    The graph is read on the host; answers go to the graph's framework: torch
    for torch data (a torch sparse graph), numpy for the scipy graphs of every
    other framework.
    """
    y = (X[:, 0] > 0).astype(np.int64)
    if kind == "k":
        trans = KNeighborsTransformer(n_neighbors=10)
        est = KNeighborsClassifier(5, metric="precomputed")
        ref = skn.KNeighborsClassifier(5)
    else:
        kw = {"outlier_label": "most_frequent"}
        trans = RadiusNeighborsTransformer(radius=2 * RADIUS)
        est = RadiusNeighborsClassifier(RADIUS, metric="precomputed", **kw)
        ref = skn.RadiusNeighborsClassifier(RADIUS, **kw)
    pipe = make_pipeline(trans, est).fit(backend.asarray(X), y)
    pred = pipe.predict(backend.asarray(Q))
    if backend.name == "torch":
        assert_in_backend(pred, backend, "int64")
    else:
        assert isinstance(pred, np.ndarray)
    np.testing.assert_array_equal(xplearn.to_numpy(pred), ref.fit(X, y).predict(Q))


def test_precomputed_graph_bad_input() -> None:
    G = KNeighborsTransformer(n_neighbors=3).fit_transform(X)
    with pytest.raises(ValueError, match="must be square"):
        NearestNeighbors(metric="precomputed").fit(G[:5])
    nn = NearestNeighbors(n_neighbors=5, metric="precomputed").fit(G)
    with pytest.raises(ValueError, match="neighbors per samples are required"):
        nn.kneighbors(None)
    with pytest.raises(ValueError, match=r"shape \(n_queries, n_indexed\)"):
        nn.kneighbors(G[:, :5])
    negative = G.copy()
    negative.data[0] = -1.0
    with pytest.raises(ValueError, match="Negative values"):
        NearestNeighbors(metric="precomputed").fit(negative)
    with pytest.raises(TypeError, match="'dok' format"):
        NearestNeighbors(metric="precomputed").fit(G.todok())
    before = G.copy()
    nn.kneighbors(G, n_neighbors=2)
    assert (before != G).nnz == 0  # the caller's graph is not written
