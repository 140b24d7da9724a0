"""k-means++ seeding: the public :func:`kmeans_plusplus` and its ``xp`` body.

Random numbers are drawn on the host with numpy (a RandomState from
``random_state``) and only indices move to the device, so one seed gives one
initialisation on every backend.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from xplearn._convert import to_numpy
from xplearn._dispatch import Edge
from xplearn._namespace import device_of, namespace_name
from xplearn._primitives import is_accelerator, sq_row_norms, working_memory_bytes
from xplearn._scaling import scale_exponent, times_pow2
from xplearn._validation import check_array, float_dtypes
from xplearn.neighbors._search import host_threads, on_host_threads

from ._checks import _check_n_clusters, _check_norms, _check_sample_weight


def _check_random_state(random_state: Any) -> Any:
    from sklearn.utils import check_random_state

    return check_random_state(random_state)


def _host_floats(x: Any) -> Any:
    """Copy to the host as float64, writable (numpy views of jax or TF data are not)."""
    import numpy as np

    return np.array(to_numpy(x), dtype=np.float64)


def _kmeans_plusplus(
    X: Any,
    n_clusters: int,
    x_squared_norms: Any,
    sample_weight: Any,
    random_state: Any,
    n_local_trials: int | None,
    xp: ModuleType,
) -> tuple[Any, Any]:
    """Greedy k-means++ (scikit-learn's); random draws on the host.

    ``x_squared_norms`` may be None (computed here).  Data out of the safe
    range is seeded at an exact power-of-two scale (:mod:`._scaling`), with
    norms of the scaled rows; the centres are rows of ``X`` itself.
    """
    e = scale_exponent([X], xp)
    if e:
        Xs = times_pow2(X, -e, xp)
        _, idx = _kmeans_plusplus(
            Xs, n_clusters, None, sample_weight, random_state, n_local_trials, xp
        )
        return xp.take(X, idx, axis=0), idx
    import numpy as np

    n = X.shape[0]
    dev = device_of(X)
    host = _host_data(X, xp)
    if host is None and float_dtypes(xp, dev)[0] != xp.float64:
        # No float64 on the device (jax without x64, MPS): the draws run on
        # the host (zero-copy for jax on a CPU), so that the seed picks the
        # same centres as everywhere else; only indices go back.
        host = to_numpy(X)
    if host is not None:
        # numpy, or torch's CPU data through a zero-copy numpy view: a step
        # in blocks of rows on the host threads (see _host_seeds).
        seeds = _host_seeds(
            host,
            n_clusters,
            None if x_squared_norms is None else to_numpy(x_squared_norms),
            _host_floats(sample_weight),
            random_state,
            n_local_trials,
            host_threads(xp),
            working_memory_bytes(xp, dev),
        )
        idx = xp.asarray(seeds, device=dev)
        return xp.take(X, idx, axis=0), idx
    # Distances and potentials in the widest float of the device: the draws
    # compare a uniform number with cumulative sums whose steps are about
    # 1/n of the total, so float32 rounding (which differs between numpy's
    # and torch's GEMMs) picked different centres on different backends
    # (200 000 × 32, the 7th of 10).  X is widened once where that fits the
    # working memory (float64 data is used as it is), else tile by tile.
    wide = float_dtypes(xp, dev)[0]
    whole = X.dtype == wide or 2 * X.shape[1] * n * 8 <= working_memory_bytes(xp, dev)
    Xw = xp.astype(X, wide, copy=False) if whole else None
    step = n if whole else max(1, min(n, 2**16))

    def widened(i: int) -> Any:
        j = min(i + step, n)
        return Xw[i:j, :] if Xw is not None else xp.astype(X[i:j, :], wide)

    if x_squared_norms is None:
        parts = [sq_row_norms(widened(i), xp) for i in range(0, n, step)]
        x_squared_norms = parts[0] if len(parts) == 1 else xp.concat(parts)
    xx = xp.astype(x_squared_norms, wide)
    w = xp.astype(sample_weight, wide)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    w_host = _host_floats(sample_weight)
    first = int(random_state.choice(n, p=w_host / w_host.sum()))
    indices = [first]

    def sqdist(rows: Any) -> Any:
        C = xp.astype(xp.take(X, rows, axis=0), wide)
        cc = sq_row_norms(C, xp)[:, None]
        parts = [
            cc - 2.0 * (C @ widened(i).T) + xx[None, i : min(i + step, n)]
            for i in range(0, n, step)
        ]
        D = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)
        return xp.clip(D, min=0.0)

    closest = sqdist(xp.asarray([first], device=dev))[0, :]
    pot = float(xp.sum(closest * w))
    for _ in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * pot
        # Cumulative sums on the host in float64 (scikit-learn's stable_cumsum).
        cum = np.cumsum(_host_floats(closest) * w_host)
        cand = np.minimum(np.searchsorted(cum, rand_vals), n - 1)
        D = xp.minimum(closest[None, :], sqdist(xp.asarray(cand, device=dev)))
        pots = _host_floats(D @ w)
        best = int(np.argmin(pots))
        pot = float(pots[best])
        closest = D[best, :]
        indices.append(int(cand[best]))
    idx = xp.asarray(indices, device=dev)
    return xp.take(X, idx, axis=0), idx


def _host_data(X: Any, xp: ModuleType) -> Any:
    """Return a numpy view of ``X`` for :func:`_host_seeds`, or None.

    numpy's data itself; torch's CPU data zero-copy; None elsewhere.
    """
    name = namespace_name(xp)
    if name == "numpy":
        return X
    if name != "torch" or is_accelerator(xp, device_of(X)):
        return None
    if X.dtype not in (xp.float32, xp.float64):
        return None
    return X.detach().numpy()  # only indices come back


# Elements per block of a k-means++ step (1 MiB of float64 rows [x, 1, |x|²]:
# in the core's cache with its candidates' distances; smaller blocks paid
# per call: 2**13 took 3.4x as long as 2**17 at 200 000 x 32, k = 64).
_SEED_BLOCK_ELEMENTS = 2**17
_SEED_BLOCKS_PER_THREAD = 24


class _HostRows:
    """Host data as float64 rows ``[x, 1, |x|²]`` in blocks, for k-means++ steps.

    The rows are written once where they fit ``budget`` (and read from the
    cache at each step where it holds them), else widened block by block at
    each step.  A step runs on ``workers`` host threads (one BLAS thread
    each) for large data.
    """

    def __init__(self, X: Any, norms: Any, workers: int, budget: int) -> None:
        import numpy as np

        n, d = X.shape
        self.X, self.d = X, d
        self.rows = max(16, min(n, _SEED_BLOCK_ELEMENTS // (d + 2)))
        self.blocks = [(i, min(i + self.rows, n)) for i in range(0, n, self.rows)]
        # The host threads pay from about 24 blocks each (6e6 elements on
        # two): a block's few numpy calls each hand the GIL over, and with
        # fewer blocks two threads took up to 1.8x as long as one (5 000 x
        # 100, k = 50); at 200 000 x 32, k = 64: 0.54 s on two, 0.60 on one.
        enough = len(self.blocks) >= _SEED_BLOCKS_PER_THREAD * workers
        self.workers = workers if enough else 1
        self.whole = np.empty((n, d + 2)) if (d + 2) * n * 8 <= budget else None
        self.xx = np.empty(n) if norms is None else np.asarray(norms, np.float64)

        def prepare(lo: int, hi: int) -> None:
            for a, b in self.blocks[lo:hi]:
                Xb = X[a:b]
                if norms is None:
                    Xb = np.asarray(Xb, dtype=np.float64)
                    np.einsum("ij,ij->i", Xb, Xb, out=self.xx[a:b])
                if self.whole is not None:
                    self.fill(self.whole[a:b], a, b, Xb)

        if norms is None or self.whole is not None:
            on_host_threads(prepare, len(self.blocks), self.workers)

    def fill(self, Xa: Any, a: int, b: int, Xb: Any = None) -> None:
        """Write the rows ``a:b`` (``Xb``, if given) as ``[x, 1, |x|²]`` into ``Xa``."""
        import numpy as np

        np.copyto(Xa[:, : self.d], self.X[a:b] if Xb is None else Xb)
        Xa[:, self.d] = 1.0
        Xa[:, self.d + 1] = self.xx[a:b]

    def potentials(self, C: Any, closest: Any, D: Any, w: Any) -> Any:
        """Write each row's distances to the rows of ``C`` into ``D[:t]``.

        The distances are clipped to ``[0, closest]``; return their
        potentials (weights ``w``, or None for unit weights), added in
        block order.
        """
        import numpy as np

        t, d = C.shape
        # [-2c, |c|², 1] · [x, 1, |x|²] = |c|² - 2 c·x + |x|²: one product a
        # block, no elementwise pass over the distances for the norms.
        Ca = np.ones((t, d + 2))
        np.multiply(C, -2.0, out=Ca[:, :d])
        np.einsum("ij,ij->i", C, C, out=Ca[:, d])
        block_pots = np.empty((len(self.blocks), t))

        def share(lo: int, hi: int) -> None:
            # The share's buffers, reused: a fresh block each time was mapped
            # and unmapped by the allocator (page faults on every block).
            whole = self.whole
            Xa_buf = np.empty((self.rows if whole is None else 0, d + 2))
            G_buf = np.empty((t, self.rows))
            for j in range(lo, hi):
                a, b = self.blocks[j]
                G = G_buf[:, : b - a]
                if whole is not None:
                    Xa = whole[a:b]
                else:
                    Xa = Xa_buf[: b - a]
                    self.fill(Xa, a, b)
                np.matmul(Ca, Xa.T, out=G)
                out = D[:t, a:b]
                # At least 0 (rounding), at most the closest so far (>= 0).
                np.clip(G, 0.0, closest[None, a:b], out=out)
                block_pots[j] = out.sum(axis=1) if w is None else out @ w[a:b]

        on_host_threads(share, len(self.blocks), self.workers)
        return block_pots.sum(axis=0)  # by block, not share: any threads alike


def _host_seeds(
    X: Any,
    n_clusters: int,
    x_squared_norms: Any,
    w: Any,
    random_state: Any,
    n_local_trials: int | None,
    workers: int,
    budget: int,
) -> list[int]:
    """Greedy k-means++ on host data (numpy, float32 or float64): the indices.

    The draws of the ``xp`` body, in float64, a step one pass over
    :class:`_HostRows`: one product a block gives the candidates'
    distances, clipped and summed while in the cache.  The ``xp`` body
    writes the distances and reads them back once per elementwise
    operation: 0.87-1.0 s at 200 000 × 32, k = 64, against 0.54-0.60 here
    (0.70-0.76 against 0.31-0.33 s at 1 000 000 × 8, k = 16).
    """
    import numpy as np

    n = X.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    data = _HostRows(X, x_squared_norms, workers, budget)
    weights = None if np.all(w == 1.0) else w
    first = int(random_state.choice(n, p=w / w.sum()))
    indices = [first]
    # Each step writes its candidates' distances to one buffer while the
    # closest distances so far are a row of the other (no copy of the row).
    buffers = [np.empty((n_local_trials, n)), np.empty((n_local_trials, n))]
    wide = np.asarray(X[[first]], dtype=np.float64)
    pot = float(data.potentials(wide, np.full(n, np.inf), buffers[0], weights)[0])
    closest = buffers[0][0]
    weighted = np.empty(n)
    for i in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * pot
        # Cumulative sums in float64 (scikit-learn's stable_cumsum).
        cum = np.cumsum(
            closest if weights is None else np.multiply(closest, w, out=weighted)
        )
        cand = np.minimum(np.searchsorted(cum, rand_vals), n - 1)
        D = buffers[i % 2]
        pots = data.potentials(np.asarray(X[cand], np.float64), closest, D, weights)
        best = int(np.argmin(pots))
        pot = float(pots[best])
        closest = D[best]
        indices.append(int(cand[best]))
    return indices


def kmeans_plusplus(
    X: Any,
    n_clusters: int,
    *,
    sample_weight: Any = None,
    x_squared_norms: Any = None,
    random_state: Any = None,
    n_local_trials: int | None = None,
) -> tuple[Any, Any]:
    """Pick initial centres by greedy k-means++ (scikit-learn's semantics).

    Parameters
    ----------
    X : array or sparse matrix of shape (n_samples, n_features)
        Any supported framework, or a scipy sparse matrix or array (CSR or
        CSC: seeded on the host, a sparse product per step; the centres
        come back as a dense numpy array, as scikit-learn's).
    n_clusters : int
        Number of centres.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weights.
    x_squared_norms : array-like of shape (n_samples,), optional
        Squared row norms of ``X``, if already computed.
    random_state : int, RandomState or None
        Seed; the draws are made on the host with numpy, so one seed gives
        the same centres on every backend.
    n_local_trials : int, optional
        Candidates per step; default ``2 + log(n_clusters)``.

    Returns
    -------
    centers : array of shape (n_clusters, n_features)
        In ``X``'s framework, device and dtype.
    indices : array of shape (n_clusters,)
        Row indices of the centres in ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.cluster import kmeans_plusplus
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [9.0, 9.0], [9.1, 9.0]])
    >>> centers, idx = kmeans_plusplus(X, 2, random_state=0)
    >>> sorted((centers[:, 0] > 5).tolist())
    [False, True]
    """
    from ._sparse import is_scipy_sparse

    if is_scipy_sparse(X):
        return _kmeans_plusplus_csr(
            X, n_clusters, sample_weight, x_squared_norms, random_state, n_local_trials
        )
    edge, Xc = Edge.of(X)
    xp = edge.xp
    Xc = check_array(Xc, xp)
    k = _check_n_clusters(n_clusters, Xc.shape[0])
    w = _check_sample_weight(sample_weight, edge, Xc.shape[0], Xc.dtype)
    norms = (
        None
        if x_squared_norms is None
        else _check_norms(edge.follow(x_squared_norms, "x_squared_norms"), Xc, xp)
    )
    centers, idx = _kmeans_plusplus(
        Xc, k, norms, w, _check_random_state(random_state), n_local_trials, xp
    )
    out: tuple[Any, Any] = edge.to_caller((centers, idx))
    return out


def _kmeans_plusplus_csr(
    X: Any,
    n_clusters: int,
    sample_weight: Any,
    x_squared_norms: Any,
    random_state: Any,
    n_local_trials: int | None,
) -> tuple[Any, Any]:
    """:func:`kmeans_plusplus` of a scipy sparse ``X``: numpy centres, indices."""
    import numpy as np

    from . import _sparse

    Xc = _sparse.check_sparse(X)
    k = _check_n_clusters(n_clusters, Xc.shape[0])
    edge = Edge.of(np.zeros((1, 1), dtype=Xc.dtype))[0]
    w = _check_sample_weight(sample_weight, edge, Xc.shape[0], Xc.dtype)
    norms = (
        _sparse.sq_norms(Xc)
        if x_squared_norms is None
        else _check_norms(edge.follow(x_squared_norms, "x_squared_norms"), Xc, edge.xp)
    )
    idx = _sparse.kmeans_plusplus_sparse(
        Xc, k, norms, w, _check_random_state(random_state), n_local_trials
    )
    return Xc[idx].toarray(), idx
