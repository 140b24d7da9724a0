"""The bfloat16-screened Lloyd E-step gives the float32 E-step's labels.

The screen runs only on large fits; these tests lower its threshold so that
small adversarial data goes through it, check that it ran, and compare with
``config_context(screening="off")`` (the float32 path) and with float64
arithmetic on the same float32 values.
"""

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xplearn
import xplearn.cluster._screen as kscreen
import xplearn.neighbors._screen as screen
from backends import assert_equal
from test_cluster import fitted
from xplearn.cluster import KMeans

npx = pytest.importorskip("array_api_compat.numpy")  # the library's numpy namespace


@pytest.fixture
def forced(monkeypatch):
    """Screen every float32 Lloyd E-step of torch/numpy; count what it does."""
    calls = {"screens": 0, "certified": 0, "redone": 0}
    monkeypatch.setattr(kscreen, "_MIN_WORK", 0)
    monkeypatch.setattr(kscreen, "_MIN_FEATURES", 0)
    monkeypatch.setitem(screen._FAST, "cpu", True)  # correctness does not care
    real = kscreen.LloydScreen.labels

    def spy(self, C, workers, finish):
        before = (self.screened, self.redone)
        got = real(self, C, workers, finish)
        if got is not None:
            calls["screens"] += 1
            calls["certified"] += self.screened - before[0]
            calls["redone"] += self.redone - before[1]
        return got

    monkeypatch.setattr(kscreen.LloydScreen, "labels", spy)
    before = xplearn.get_config()["screening"]
    xplearn.set_config(screening="all")  # the E-step screen is opt-in
    yield calls
    xplearn.set_config(screening=before)


def _screenable(backend) -> bool:
    """torch on the CPU, eager TensorFlow (computed on torch), and numpy where
    torch is installed (the screen runs on zero-copy torch views)."""
    if importlib.util.find_spec("torch") is None:
        return False
    return (
        backend.name in ("numpy", "torch", "tensorflow") and backend.variant != "cuda"
    )


def _data(kind: str, rng) -> np.ndarray:
    """float32 samples that are hard on an approximate screen."""
    if kind == "offset":  # a common offset of 1e4: norms far above distances
        X = rng.standard_normal((1500, 16)) + 1e4
    elif kind == "near_duplicates":  # clusters of points 1e-4 apart
        base = rng.standard_normal((150, 8)) * 3
        X = np.repeat(base, 10, axis=0) + 1e-4 * rng.standard_normal((1500, 8))
    elif kind == "grid":  # integers: exact ties everywhere
        X = rng.integers(0, 4, size=(1500, 3))
    elif kind == "d1":
        X = rng.standard_normal((1500, 1))
    elif kind == "d1024":
        X = rng.standard_normal((300, 1024))
    elif kind == "blobs":  # well separated: almost every point certified
        from sklearn.datasets import make_blobs

        X, _ = make_blobs(3000, 8, centers=12, cluster_std=0.5, random_state=0)
    else:  # "norms": row norms spread over 1e-3 … 1e3
        scale = 10.0 ** rng.uniform(-3, 3, size=(1500, 1))
        X = rng.standard_normal((1500, 12)) * scale
    return X.astype(np.float32)


def _float64_labels(X, C):
    """Nearest centre in float64 arithmetic on the float32 values, and the gap
    between the nearest and the runner-up (ties: the lower index)."""
    D = ((X.astype(np.float64)[:, None, :] - C.astype(np.float64)[None]) ** 2).sum(-1)
    order = np.argsort(D, axis=1, kind="stable")
    rows = np.arange(len(X))
    return order[:, 0], D[rows, order[:, 1]] - D[rows, order[:, 0]]


KINDS = ["offset", "near_duplicates", "grid", "d1", "d1024", "norms", "blobs"]


@pytest.mark.parametrize("kind", KINDS)
def test_screened_fit_equals_float32_fit(backend, forced, kind) -> None:
    X = _data(kind, np.random.default_rng(0))
    k = 8
    init = X[np.random.default_rng(1).choice(len(X), k, replace=False)]
    Xb, ib = backend.asarray(X), backend.asarray(init)

    def fit():
        return KMeans(k, init=ib, n_init=1, max_iter=6, tol=0).fit(Xb)

    with xplearn.config_context(screening="off"):
        off = fit()
    assert forced["screens"] == 0
    on = fit()
    if _screenable(backend):
        assert forced["screens"] >= on.n_iter_
    else:
        assert forced["screens"] == 0
    where = fitted(backend)  # TF's fitted attributes live on its compute side
    assert_equal(on.labels_, xplearn.to_numpy(off.labels_), where, dtype="int64")
    assert_equal(
        on.cluster_centers_,
        xplearn.to_numpy(off.cluster_centers_),
        where,
        dtype="float32",
    )
    assert on.inertia_ == off.inertia_
    assert on.n_iter_ == off.n_iter_
    # Against float64 arithmetic: every label whose runner-up is farther than
    # the float32 expansion's rounding is the exact nearest centre.
    C = xplearn.to_numpy(on.cluster_centers_)
    exact, gap = _float64_labels(X, C)
    X64, C64 = X.astype(np.float64), C.astype(np.float64)
    scale = (X64**2).sum(1) + (C64**2).sum(1).max()
    clear = gap > 1e-4 * scale
    labels = xplearn.to_numpy(on.labels_)
    np.testing.assert_array_equal(labels[clear], exact[clear])


def test_exact_ties_are_redone_and_go_to_the_lower_index(forced, torch) -> None:
    """Integer data with duplicated centres: every point ties, none is
    certified, and the float32 path gives each the lower index."""
    from xplearn.cluster._lloyd import _Data, _nearest

    X = np.random.default_rng(3).integers(0, 5, size=(2000, 2)).astype(np.float32)
    C = np.array([[1, 1], [3, 3], [1, 1], [3, 3]], dtype=np.float32)
    w = np.ones(len(X), dtype=np.float32)
    data = _Data(X, w, npx, 4)
    assert data.screen is not None
    labels = _nearest(data, C, npx)
    assert forced["screens"] == 1
    assert forced["redone"] == len(X)
    exact, _ = _float64_labels(X, C)
    np.testing.assert_array_equal(labels, exact)
    assert set(np.unique(labels)) <= {0, 1}


def test_separated_clusters_are_certified(forced, torch) -> None:
    """Converged centres of well-separated blobs: (almost) nothing is redone."""
    from sklearn.datasets import make_blobs

    from xplearn.cluster._lloyd import _Data, _nearest

    X, y = make_blobs(20_000, 16, centers=10, random_state=0)
    X = (X - X.mean(0)).astype(np.float32)
    C = np.stack([X[y == j].mean(0) for j in range(10)]).astype(np.float32)
    data = _Data(X, np.ones(len(X), dtype=np.float32), npx, 10)
    labels = _nearest(data, C, npx)
    assert forced["screens"] == 1
    assert forced["redone"] <= 20
    np.testing.assert_array_equal(labels, _nearest(data, C, npx, screen=False))


def test_hopeless_screen_hands_the_rest_to_float32(forced, monkeypatch, torch):
    """Where most points cannot be certified, the screen stops, float32 labels
    the rest, and the next E-steps skip the screen for a while."""
    from xplearn.cluster._lloyd import _Data, _nearest

    monkeypatch.setattr(kscreen, "_TILE_ELEMENTS", 64 * 100)
    X = np.random.default_rng(4).integers(0, 3, size=(3000, 2)).astype(np.float32)
    C = np.array([[0, 0], [0, 0], [2, 2], [2, 2]], dtype=np.float32)
    data = _Data(X, np.ones(len(X), dtype=np.float32), npx, 4)
    labels = _nearest(data, C, npx)
    np.testing.assert_array_equal(labels, _nearest(data, C, npx, screen=False))
    assert data.screen.paused == kscreen._PAUSE
    assert forced["redone"] == len(X)
    _nearest(data, C, npx)
    assert forced["screens"] == 1  # paused
    assert data.screen.paused == kscreen._PAUSE - 1


def test_torch_threads_are_restored(forced, torch) -> None:
    before = torch.get_num_threads()
    X = _data("blobs", np.random.default_rng(0))
    KMeans(5, n_init=1, random_state=0).fit(torch.from_numpy(X))
    assert forced["screens"] > 0
    assert torch.get_num_threads() == before


def test_float64_auto_and_off_are_not_screened(forced, torch) -> None:
    """The E-step screen is opt-in (``screening="all"``); float64 never."""
    X = _data("blobs", np.random.default_rng(0))
    KMeans(5, n_init=1, random_state=0).fit(X.astype(np.float64))
    for setting in ("off", "auto"):
        with xplearn.config_context(screening=setting):
            KMeans(5, n_init=1, random_state=0).fit(X)
    assert forced["screens"] == 0


@settings(
    derandomize=True,
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    n=st.integers(2, 400),
    d=st.integers(1, 40),
    k=st.integers(2, 20),
    log_scale=st.floats(-12, 12),
    offset=st.sampled_from([0.0, 1.0, 1e3, 1e5]),
    grid=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_screen_property(forced, torch, n, d, k, log_scale, offset, grid, seed):
    """Random shapes, scales and offsets: screened E-step == float32 E-step."""
    from xplearn.cluster._lloyd import _Data, _nearest

    rng = np.random.default_rng(seed)
    pts = rng.standard_normal((n, d))
    if grid:
        pts = np.round(pts * 2)
    X = (pts * 10.0**log_scale + offset).astype(np.float32)
    X = X - X.mean(0, dtype=np.float32)
    C = X[rng.choice(n, min(k, n), replace=False)] + np.float32(
        10.0**log_scale * 0.01
    ) * rng.standard_normal((min(k, n), d)).astype(np.float32)
    data = _Data(X, np.ones(n, dtype=np.float32), npx, C.shape[0])
    for xp_name in ("numpy", "torch"):
        if xp_name == "numpy":
            got = _nearest(data, C, npx)
            want = _nearest(data, C, npx, screen=False)
        else:
            import array_api_compat.torch as txp

            Xt, Ct = torch.from_numpy(X), torch.from_numpy(C)
            tdata = _Data(Xt, torch.ones(n), txp, C.shape[0])
            got = _nearest(tdata, Ct, txp)
            want = _nearest(tdata, Ct, txp, screen=False)
            assert_in_backend_torch(got, torch)
        np.testing.assert_array_equal(xplearn.to_numpy(got), xplearn.to_numpy(want))


def assert_in_backend_torch(x, torch) -> None:
    assert isinstance(x, torch.Tensor)
    assert x.dtype == torch.int64
    assert x.device.type == "cpu"
