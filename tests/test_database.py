"""What a fitted estimator keeps of its rows between Euclidean searches.

A fitted neighbours estimator holds a ``Database`` of its rows: their
largest magnitude (the scale check) and, built by the first search, the
screen's operand (centred rows, squared norms; the bfloat16 screen's
centres and databases).  Later searches reuse them.  These tests check that
the answers are the function's (which keeps nothing) bit for bit and the
float64 order, on adversarial data and every backend; that the operand is
built once; that a torch tensor written into after ``fit`` is searched as
it now is; and that pickles leave the kept arrays out.
"""

import pickle

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import xplearn
import xplearn.neighbors._screen as screen
import xplearn.neighbors._search as search
from test_search import KINDS, _hard_data
from xplearn.neighbors import NearestNeighbors, kneighbors


def _oracle(X, Y, k):
    ref = cdist(X.astype(np.float64), Y.astype(np.float64), "sqeuclidean")
    ind = np.argsort(ref, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(ref, ind, axis=1)), ind


def _assert_same(got, want):
    np.testing.assert_array_equal(xplearn.to_numpy(got[1]), xplearn.to_numpy(want[1]))
    np.testing.assert_array_equal(xplearn.to_numpy(got[0]), xplearn.to_numpy(want[0]))


def _count_operands(monkeypatch):
    built = []
    real = search._database_operand

    def spy(Y, xp, fused):
        built.append(tuple(Y.shape))
        return real(Y, xp, fused)

    monkeypatch.setattr(search, "_database_operand", spy)
    return built


def _count_screen_databases(monkeypatch):
    made = []
    real = screen._database

    def spy(Y, c):
        made.append(tuple(Y.shape))
        return real(Y, c)

    monkeypatch.setattr(screen, "_database", spy)
    return made


@pytest.mark.parametrize("kind", KINDS)
def test_fitted_searches_answer_as_the_function(backend, monkeypatch, kind):
    """Three searches of a fitted estimator (all queries, a few, and the
    fitted rows themselves) give the function's answers bit for bit and the
    float64 ones; where the estimator keeps a Database, the operand is built
    by the first search only; the caller's arrays are unchanged."""
    from backends import assert_in_backend

    monkeypatch.setattr(search, "_TORCH_MIN_WORK", 2**62)
    built = _count_operands(monkeypatch)
    Y, X = _hard_data(kind, np.random.default_rng(11))
    before = (X.copy(), Y.copy())
    Yb, Xb, Xf = backend.asarray(Y), backend.asarray(X), backend.asarray(X[:3])
    with xplearn.config_context(screening="off", pruning="off"):
        est = NearestNeighbors(n_neighbors=7).fit(Yb)
        kept = est._database
        got = [est.kneighbors(Xb), est.kneighbors(Xf), est.kneighbors()]
        n_built = len(built)
        want = [
            kneighbors(Xb, Yb, n_neighbors=7),
            kneighbors(Xf, Yb, n_neighbors=7),
        ]
    if kept is not None:
        assert est._database is kept
        assert n_built == 1
    else:  # (jax, dask, array-api-strict keep nothing)
        assert backend.name in {"jax", "dask", "array_api_strict"}
    for g, w in zip(got, want, strict=False):
        assert_in_backend(g[1], backend, "int64")
        assert_in_backend(g[0], backend, "float32")
        _assert_same(g, w)
    dist, ind = _oracle(X, Y, 7)
    np.testing.assert_array_equal(xplearn.to_numpy(got[0][1]), ind)
    np.testing.assert_allclose(xplearn.to_numpy(got[0][0]), dist, rtol=1e-6)
    # Leave-one-out by scikit-learn's rule: the 8 nearest less the row
    # itself, or less the first where 8 duplicates at 0 leave it out.
    _, own = _oracle(Y, Y, 8)
    keep = own != np.arange(len(Y))[:, None]
    keep[keep.all(axis=1), 0] = False
    loo = own[keep].reshape(len(Y), 7)
    np.testing.assert_array_equal(xplearn.to_numpy(got[2][1]), loo)
    np.testing.assert_array_equal(X, before[0])
    np.testing.assert_array_equal(Y, before[1])


def test_scaled_searches_answer_as_the_function(backend, monkeypatch):
    """Data whose squares overflow float32 is searched at a power-of-two
    scale: the kept largest magnitude decides it as the function does, and
    the answer is the function's and the float64 one."""
    rng = np.random.default_rng(3)
    Y = (rng.standard_normal((1500, 12)) * 1e20).astype(np.float32)
    X = (rng.standard_normal((40, 12)) * 1e20).astype(np.float32)
    Yb, Xb = backend.asarray(Y), backend.asarray(X)
    with xplearn.config_context(screening="off", pruning="off"):
        est = NearestNeighbors(n_neighbors=5).fit(Yb)
        got = est.kneighbors(Xb)
        want = kneighbors(Xb, Yb, n_neighbors=5)
        # Queries far larger than the fitted rows: the scale is theirs.
        big = backend.asarray(X * np.float32(1e3))
        got_big = est.kneighbors(big)
        want_big = kneighbors(big, Yb, n_neighbors=5)
    _assert_same(got, want)
    _assert_same(got_big, want_big)
    dist, ind = _oracle(X, Y, 5)
    np.testing.assert_array_equal(xplearn.to_numpy(got[1]), ind)
    np.testing.assert_allclose(xplearn.to_numpy(got[0]), dist, rtol=1e-6)
    dist, ind = _oracle(X * np.float32(1e3), Y, 5)
    np.testing.assert_array_equal(xplearn.to_numpy(got_big[1]), ind)
    np.testing.assert_allclose(xplearn.to_numpy(got_big[0]), dist, rtol=1e-6)


def test_torch_written_after_fit_is_searched_as_it_is(torch):
    """A fitted torch tensor written into in place (its version counter
    moves) is searched as it now is: a new Database, the float64 answer of
    the new rows; the function gives the same."""
    Y, X = _hard_data("offset", np.random.default_rng(5))
    Yt = torch.from_numpy(Y.copy())
    Xt = torch.from_numpy(X)
    with xplearn.config_context(screening="off", pruning="off"):
        est = NearestNeighbors(n_neighbors=4).fit(Yt)
        first = est.kneighbors(Xt)
        kept = est._database
        Yt[::7] = Xt[0] + 0.5  # in place: rows right next to query 0
        Yt.mul_(1.0)
        got = est.kneighbors(Xt)
        want = kneighbors(Xt, Yt, n_neighbors=4)
    assert est._database is not kept
    new = Yt.numpy()
    dist, ind = _oracle(X, new, 4)
    assert not np.array_equal(first[1].numpy(), ind)
    np.testing.assert_array_equal(got[1].numpy(), ind)
    np.testing.assert_allclose(got[0].numpy(), dist, rtol=1e-6)
    _assert_same(got, want)


def test_refit_and_pickle_keep_no_stale_database(monkeypatch):
    """fit makes a new Database; a pickle leaves the kept operand out (the
    first search after loading builds it again) and answers the same."""
    built = _count_operands(monkeypatch)
    rng = np.random.default_rng(8)
    Y = rng.standard_normal((2000, 16)).astype(np.float32)
    X = rng.standard_normal((30, 16)).astype(np.float32)
    with xplearn.config_context(screening="off", pruning="off"):
        est = NearestNeighbors(n_neighbors=6).fit(Y)
        got = est.kneighbors(X)
        assert len(built) == 1
        blob = pickle.dumps(est)
        assert len(blob) < 1.2 * Y.nbytes  # the rows once, not the operand too
        loaded = pickle.loads(blob)
        assert est._database is not None
        assert loaded._database is None
        _assert_same(loaded.kneighbors(X), got)
        assert len(built) == 2
        _assert_same(est.kneighbors(X), got)
        assert len(built) == 2
        Y2 = Y[::-1].copy()
        est.fit(Y2)
        refit = est.kneighbors(X)
        assert len(built) == 3
        _assert_same(refit, kneighbors(X, Y2, n_neighbors=6))


@pytest.mark.parametrize("kind", ["offset", "near_duplicates", "grid", "norms"])
def test_screen_keeps_its_databases(torch, monkeypatch, kind):
    """The bfloat16 screen (forced on small data) keeps its centres and
    bfloat16 databases in the estimator's Database: the second search builds
    none, and both answer as the function's screen, the float32 search and
    float64 do."""
    monkeypatch.setattr(screen, "_MIN_WORK", 0)
    monkeypatch.setattr(screen, "_MIN_ROWS_PER_CANDIDATE", 0)
    monkeypatch.setitem(screen._FAST, "cpu", True)  # correctness does not care
    made = _count_screen_databases(monkeypatch)
    Y, X = _hard_data(kind, np.random.default_rng(9))
    for data in (Y, torch.from_numpy(Y)):
        made.clear()
        Xq = X if isinstance(data, np.ndarray) else torch.from_numpy(X)
        with xplearn.config_context(pruning="off"):
            est = NearestNeighbors(n_neighbors=7).fit(data)
            got = [est.kneighbors(Xq), est.kneighbors(Xq[:50])]
            assert len(made) == 1
            assert est._database.screen  # the screen's, kept
            want = kneighbors(Xq, data, n_neighbors=7)
            with xplearn.config_context(screening="off"):
                plain = kneighbors(Xq, data, n_neighbors=7)
        _assert_same(got[0], want)
        _assert_same(got[0], plain)
        _assert_same(got[1], (plain[0][:50], plain[1][:50]))
        _, ind = _oracle(X, Y, 7)
        np.testing.assert_array_equal(xplearn.to_numpy(got[0][1]), ind)


@pytest.mark.parametrize("kind", KINDS)
def test_few_query_searches_share_the_kept_screen(torch, monkeypatch, kind):
    """Searches too small for the bfloat16 screen alone take it once their
    work adds up to its threshold (the kept rows are then built, once), from
    two queries on; a one-query search keeps the float32 path.  Every
    answer, numpy or torch, equals the float32 search's bit for bit and the
    float64 order."""
    Y, X = _hard_data(kind, np.random.default_rng(5))
    per_search = 5 * Y.shape[0] * Y.shape[1]  # five queries
    # Three such searches pay for the bfloat16 rows.
    monkeypatch.setattr(screen, "_MIN_WORK", 3 * per_search)
    monkeypatch.setattr(search, "_SCREEN_MIN_WORK", 3 * per_search)
    monkeypatch.setattr(screen, "_MIN_KEPT_WORK", 0)
    monkeypatch.setattr(screen, "_MIN_ROWS_PER_CANDIDATE", 0)
    monkeypatch.setitem(screen._FAST, "cpu", True)  # correctness does not care
    screened = []
    real = search.screened_search

    def spy(X, *args, **kwargs):
        screened.append(X.shape[0])
        return real(X, *args, **kwargs)

    monkeypatch.setattr(search, "screened_search", spy)
    made = _count_screen_databases(monkeypatch)
    for data in (Y, torch.from_numpy(Y)):
        screened.clear()
        made.clear()
        Xq = X if isinstance(data, np.ndarray) else torch.from_numpy(X)
        with xplearn.config_context(pruning="off"):
            est = NearestNeighbors(n_neighbors=6).fit(data)
            got = [est.kneighbors(Xq[i : i + 5]) for i in range(0, 25, 5)]
            one = est.kneighbors(Xq[25:26])
            with xplearn.config_context(screening="off"):
                plain = kneighbors(Xq[:26], data, n_neighbors=6)
        assert screened == [5, 5, 5]  # the third search's work reaches it
        assert made == [tuple(Y.shape)]  # the bfloat16 rows, built once
        assert type(one[0]) is type(Xq)
        assert type(got[-1][1]) is type(Xq)
        got_all = [
            np.concatenate([xplearn.to_numpy(g[j]) for g in [*got, one]])
            for j in (0, 1)
        ]
        _assert_same(got_all, plain)
        _, ind = _oracle(X[:26], Y, 6)
        np.testing.assert_array_equal(got_all[1], ind)
