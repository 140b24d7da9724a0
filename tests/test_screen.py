"""The bfloat16 screen returns the float32 search's answer, bit for bit.

The screen only runs on large searches; these tests lower its thresholds so
that small adversarial data goes through it, and check that it did.
"""

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xplearn
import xplearn.neighbors._screen as screen
from backends import assert_equal, assert_in_backend, knn_oracle
from xplearn.neighbors import kneighbors

K = 5


@pytest.fixture
def pivots():
    """The opt-in pivot centring of the screen (``screening="all"``)."""
    with xplearn.config_context(screening="all"):
        yield


@pytest.fixture
def forced(monkeypatch):
    """Screen every float32 search of torch/numpy; count screens and redos."""
    calls = {"screened": 0, "redo_rows": 0}
    monkeypatch.setattr(screen, "_MIN_WORK", 0)
    monkeypatch.setattr(screen, "_MIN_ROWS_PER_CANDIDATE", 0)
    # Small test queries take pivots too (large searches need 64 a pivot).
    monkeypatch.setattr(screen, "_MIN_PIVOT_QUERIES", 1)
    monkeypatch.setitem(screen._FAST, "cpu", True)  # correctness does not care
    real = screen.screened_search

    def spy(X, Y, k, xp, fallback, *kept):
        calls["screened"] += 1

        def counted(Xr, Yr, kr, xpr):
            calls["redo_rows"] += Xr.shape[0]
            return fallback(Xr, Yr, kr, xpr)

        return real(X, Y, k, xp, counted, *kept)

    monkeypatch.setattr("xplearn.neighbors._search.screened_search", spy)
    return calls


def _screenable(backend) -> bool:
    """torch on the CPU, eager TensorFlow (computed on torch), and numpy where
    torch is installed (the screen runs on zero-copy torch views)."""
    if importlib.util.find_spec("torch") is None:
        return False
    return (
        backend.name in ("numpy", "torch", "tensorflow") and backend.variant != "cuda"
    )


def _data(kind: str, rng) -> tuple[np.ndarray, np.ndarray]:
    """Database and queries (float32) that are hard on an approximate screen."""
    if kind == "offset":  # a common offset of 1e4: norms far above distances
        Y = rng.standard_normal((3000, 16)) + 1e4
        X = rng.standard_normal((200, 16)) + 1e4
    elif kind == "near_duplicates":  # clusters of points 1e-4 apart
        base = rng.standard_normal((300, 8))
        Y = np.repeat(base, 10, axis=0) + 1e-4 * rng.standard_normal((3000, 8))
        X = base[:200] + 1e-4 * rng.standard_normal((200, 8))
    elif kind == "grid":  # integers: exact ties everywhere
        Y = rng.integers(0, 4, size=(3000, 3))
        X = rng.integers(0, 4, size=(200, 3))
    elif kind == "d1":
        Y = rng.standard_normal((3000, 1))
        X = rng.standard_normal((200, 1))
    elif kind == "d1024":
        Y = rng.standard_normal((400, 1024))
        X = rng.standard_normal((50, 1024))
    else:  # "norms": row norms spread over 1e-3 … 1e3
        scale = 10.0 ** rng.uniform(-3, 3, size=(3200, 1))
        pts = rng.standard_normal((3200, 12)) * scale
        Y, X = pts[:3000], pts[3000:]
    return Y.astype(np.float32), X.astype(np.float32)


@pytest.mark.parametrize(
    "kind", ["offset", "near_duplicates", "grid", "d1", "d1024", "norms"]
)
def test_screen_equals_float32_path(backend, forced, kind) -> None:
    Y, X = _data(kind, np.random.default_rng(0))
    Xb, Yb = backend.asarray(X), backend.asarray(Y)
    with xplearn.config_context(screening="off"):
        d_off, i_off = kneighbors(Xb, Yb, K)
    assert forced["screened"] == 0
    d_on, i_on = kneighbors(Xb, Yb, K)
    assert forced["screened"] == (1 if _screenable(backend) else 0)
    assert_in_backend(d_on, backend, "float32")
    assert_equal(i_on, xplearn.to_numpy(i_off), backend, dtype="int64")
    assert_equal(d_on, xplearn.to_numpy(d_off), backend, dtype="float32")
    ref, D = knn_oracle(X, Y, K)
    np.testing.assert_array_equal(xplearn.to_numpy(i_on), ref)
    np.testing.assert_allclose(
        xplearn.to_numpy(d_on) ** 2,
        np.take_along_axis(D, ref, axis=1),
        rtol=1e-5,
        atol=1e-5 * np.take_along_axis(D, ref, axis=1).max(),
    )


def test_ties_at_the_boundary_are_screened_wider_then_redone(
    forced, monkeypatch, torch
) -> None:
    """Exact ties at the k-th neighbour cannot be certified from the first
    candidates: a wider screen certifies most, float32 redoes the rest; the
    answers are the oracle's either way."""
    Y, X = _data("grid", np.random.default_rng(1))
    ref = knn_oracle(X, Y, K)[0]
    redone = {}
    for wide in (1, screen._WIDE):
        monkeypatch.setattr(screen, "_WIDE", wide)
        before = forced["redo_rows"]
        _, ind = kneighbors(X, Y, K)
        redone[wide] = forced["redo_rows"] - before
        np.testing.assert_array_equal(ind, ref)
    assert forced["screened"] == 2
    assert redone[1] > 0
    assert redone[screen._WIDE] < redone[1]


@pytest.mark.parametrize("mode", ["auto", "all-without-pivots"])
def test_loose_bound_hands_the_rest_to_float32(forced, monkeypatch, torch, mode):
    """Well-separated clusters centred on the global mean only (the default,
    or no pivots): distances far below the norms, the bound certifies
    nothing, and after the first tile float32 takes the rest."""
    from sklearn.datasets import make_blobs

    if mode != "auto":
        monkeypatch.setattr(screen, "_N_PIVOTS", 0)
    on = "auto" if mode == "auto" else "all"
    # 50 queries a tile
    monkeypatch.setattr(screen, "_TILE_ELEMENTS", 3000 * 50)
    pts, _ = make_blobs(3400, 32, centers=10, random_state=0)
    Y, X = pts[:3000].astype(np.float32), pts[3000:].astype(np.float32)
    with xplearn.config_context(screening="off"):
        d_off, i_off = kneighbors(X, Y, K)
    with xplearn.config_context(screening=on):
        d_on, i_on = kneighbors(X, Y, K)
    assert forced["screened"] == 1
    assert forced["redo_rows"] == 400
    np.testing.assert_array_equal(i_on, i_off)
    np.testing.assert_array_equal(d_on, d_off)


@pytest.mark.parametrize("n_pivots", [1, 16])
def test_clusters_are_certified_from_pivots(
    forced, pivots, monkeypatch, torch, n_pivots
):
    """The same well-separated clusters, each query centred on its nearest
    pivot: the bound holds for almost every query, with the float32 answers
    (with one pivot for ten clusters it holds only where the pivot is near)."""
    from sklearn.datasets import make_blobs

    monkeypatch.setattr(screen, "_N_PIVOTS", n_pivots)
    monkeypatch.setattr(screen, "_TILE_ELEMENTS", 3000 * 50)
    pts, _ = make_blobs(3400, 32, centers=10, random_state=0)
    Y, X = pts[:3000].astype(np.float32), pts[3000:].astype(np.float32)
    with xplearn.config_context(screening="off"):
        d_off, i_off = kneighbors(X, Y, K)
    d_on, i_on = kneighbors(X, Y, K)
    assert forced["screened"] == 1
    if n_pivots == 16:
        assert forced["redo_rows"] <= 8  # out of 400
    np.testing.assert_array_equal(i_on, i_off)
    np.testing.assert_array_equal(d_on, d_off)
    np.testing.assert_array_equal(i_on, knn_oracle(X, Y, K)[0])


@settings(
    derandomize=True,
    deadline=None,
    max_examples=12,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    n_clusters=st.integers(2, 12),
    d=st.integers(1, 48),
    k=st.integers(1, 12),
    spread=st.sampled_from([1e-4, 1e-2, 1.0]),
    offset=st.sampled_from([0.0, 1e4]),
    grid=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pivot_screen_property(
    forced, pivots, torch, n_clusters, d, k, spread, offset, grid, seed
) -> None:
    """Clustered data (where the queries take pivots): near-duplicates, a
    common offset, grid ties inside each cluster: screened == float32 path."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d)) * 10
    noise = rng.standard_normal((1260, d)) * spread
    if grid:
        noise = np.round(noise / spread) * spread
    pts = centres[rng.integers(0, n_clusters, 1260)] + noise + offset
    pts = pts.astype(np.float32)
    X, Y = pts[:60], pts[60:]
    with xplearn.config_context(screening="off"):
        d_off, i_off = kneighbors(X, Y, k)
    before = forced["screened"]
    d_on, i_on = kneighbors(X, Y, k)
    assert forced["screened"] == before + 1
    np.testing.assert_array_equal(i_on, i_off)
    np.testing.assert_array_equal(d_on, d_off)
    np.testing.assert_array_equal(i_on, knn_oracle(X, Y, k)[0])


def test_gaussian_data_is_certified(forced, torch) -> None:
    """On ordinary data the certificate holds for (almost) every query."""
    rng = np.random.default_rng(2)
    Y = rng.standard_normal((40_000, 16)).astype(np.float32)
    X = rng.standard_normal((300, 16)).astype(np.float32)
    _, ind = kneighbors(X, Y, 10)
    assert forced["screened"] == 1
    assert forced["redo_rows"] <= 3  # out of 300
    np.testing.assert_array_equal(ind, knn_oracle(X, Y, 10)[0])


def test_query_tiles_are_whole_row_blocks(forced, monkeypatch, torch) -> None:
    """The bfloat16 GEMM's query tiles are a multiple of ``_ROW_BLOCK`` rows
    (all but the last), unless one tile takes every query; the answers do
    not depend on the tiling."""
    rng = np.random.default_rng(4)
    Y = rng.standard_normal((3000, 16)).astype(np.float32)
    X = rng.standard_normal((500, 16)).astype(np.float32)
    sizes = []
    real = screen._candidates

    def spy(Xc, *args):
        sizes.append(int(Xc.shape[0]))
        return real(Xc, *args)

    monkeypatch.setattr(screen, "_candidates", spy)
    monkeypatch.setattr(screen, "_TILE_ELEMENTS", 3000 * 150)  # 150 rows
    _, ind = kneighbors(X, Y, 10)
    assert sizes[:4] == [128, 128, 128, 116]
    np.testing.assert_array_equal(ind, knn_oracle(X, Y, 10)[0])
    sizes.clear()
    monkeypatch.setattr(screen, "_TILE_ELEMENTS", 3000 * 600)  # all 500 rows
    kneighbors(X, Y, 10)
    assert sizes[0] == 500


def test_screening_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="screening must be one of"):
        xplearn.set_config(screening="bf16")


@settings(
    derandomize=True,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    n=st.integers(1, 30),
    m=st.integers(1, 300),
    d=st.integers(1, 40),
    k=st.integers(1, 12),
    log_scale=st.floats(-12, 12),
    offset=st.sampled_from([0.0, 1.0, 1e3, 1e5]),
    grid=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_screen_property(
    forced, torch, n, m, d, k, log_scale, offset, grid, seed
) -> None:
    """Random shapes, scales and offsets: screened == float32 path (numpy)."""
    k = min(k, m)
    rng = np.random.default_rng(seed)
    pts = rng.standard_normal((n + m, d))
    if grid:
        pts = np.round(pts * 2)
    pts = (pts * 10.0**log_scale + offset).astype(np.float32)
    X, Y = pts[:n], pts[n:]
    with xplearn.config_context(screening="off"):
        d_off, i_off = kneighbors(X, Y, k)
    d_on, i_on = kneighbors(X, Y, k)
    np.testing.assert_array_equal(i_on, i_off)
    np.testing.assert_array_equal(d_on, d_off)


@pytest.mark.parametrize("avx512_bf16", [False, True])
def test_bf16_decision_reads_the_instruction_sets(monkeypatch, torch, avx512_bf16):
    """The choice does not depend on a timing (which load on the machine
    could flip): the CPU's bfloat16 instructions decide where torch says."""
    monkeypatch.setattr(screen, "_FAST", {})
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)

    def timed() -> bool:
        raise AssertionError("measured although the instruction sets are known")

    monkeypatch.setattr(screen, "_measure", timed)
    assert screen.bf16_is_fast() is avx512_bf16
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    monkeypatch.setattr(screen, "_FAST", {})
    monkeypatch.setattr(screen, "_measure", lambda: True)
    assert screen.bf16_is_fast() is True  # unknown: measured


@pytest.mark.parametrize(("seed", "d"), [(0, 3), (2, 24), (2, 100)])
def test_more_exact_duplicates_than_candidates(
    forced, monkeypatch, torch, seed, d
) -> None:
    """600 copies of the query, beyond even the wider screen's candidates: their
    screened values (zero, as rounded) come out negative here, the int16 keys
    do not order negative values, and the query gets no certificate (the
    screen's value is -inf); the float32 search answers, as the oracle."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(d) * 3
    Y = np.concatenate([rng.standard_normal((3000, d)), np.repeat(p[None], 600, 0)])
    Y, X = Y.astype(np.float32), p[None, :].astype(np.float32)
    real, unbounded = screen._candidates, []

    def spy(*args):
        tau, idx, rho = real(*args)
        unbounded.append(int(torch.isinf(tau).sum()))
        return tau, idx, rho

    monkeypatch.setattr(screen, "_candidates", spy)
    dist, ind = kneighbors(X, Y, K)
    assert unbounded == [1, 1]  # the first screen, then the wider one
    assert forced["redo_rows"] == 1
    np.testing.assert_array_equal(ind, knn_oracle(X, Y, K)[0])
    np.testing.assert_array_equal(ind[0], np.arange(3000, 3000 + K))
    np.testing.assert_array_equal(dist, 0.0)


def test_rounding_ratio_bounds_the_measured_rounding(torch) -> None:
    """The per-row relative rounding to bfloat16 that tightens the screen's
    bound is never below the true one (float64), never above u, and close to
    the true one on ordinary rows (about 0.4 u there)."""
    rng = np.random.default_rng(7)
    V = rng.standard_normal((500, 37)) * 10.0 ** rng.uniform(-15, 15, (500, 1))
    V[:3] = 0.0  # zero rows
    V[3:6] = rng.standard_normal((3, 37)) * 1e-30  # squares flush: u
    V[6:8] = rng.standard_normal((2, 37)) * 1e25  # squares overflow: u
    V = torch.from_numpy(V.astype(np.float32))
    Vb = V.to(torch.bfloat16)
    vv = torch.einsum("ij,ij->i", V, V)
    got = screen.rounding_ratio(V, vv, Vb).numpy()
    V64, Vb64 = V.double().numpy(), Vb.double().numpy()
    norm = np.linalg.norm(V64, axis=1)
    true = np.linalg.norm(V64 - Vb64, axis=1) / np.where(norm > 0, norm, 1.0)
    assert np.all(got >= true)
    assert np.all(got <= screen._U)
    np.testing.assert_array_equal(got[3:8], screen._U)
    ordinary = slice(8, None)
    assert np.all(got[ordinary] <= true[ordinary] * (1 + 1e-3))
    assert np.median(got[ordinary]) < 0.6 * screen._U
