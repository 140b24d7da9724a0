"""KMeans fitted in jax operations: :func:`xplearn.cluster.kmeans` under ``jax.jit``.

A port of ``KMeans.fit`` and :func:`xplearn.cluster._lloyd._lloyd`, as
:mod:`xplearn.tensorflow._kmeans` is for TF graphs:

* the data (and the initial centres) at their safe power-of-two scale,
  centred on the mean; ``tol`` times the mean feature variance;
* each E-step the first minimum of ``[−2x, 1] @ [cᵀ; ‖c‖²]``; float64
  re-checks near ties by differences (ties to the lower index), float32
  takes the product's rounding, as the eager estimator and scikit-learn do;
* each M-step weighted segment sums; empty clusters take the points
  farthest from their centres (equally far: the higher index first), one
  per empty cluster in index order, and a cluster still empty the heaviest
  one's centre;
* a ``lax.while_loop`` that stops on strict convergence, on a centre shift
  within the tolerance, or after ``max_iter`` iterations; a last E-step
  makes the labels match the centres.

Initial centres must be given as an array: k-means++ and "random" draw on
the host with numpy (one seed, one initialisation on every backend), which
a trace cannot do.
"""

from __future__ import annotations

from typing import Any

from xplearn._primitives import segment_sums
from xplearn.neighbors._search import augment_centers, augment_queries, rounding_bound

from . import _kernels
from ._functional import as_jax, check_traced_array


def _check(
    X: Any, n_clusters: Any, init: Any, n_init: Any, max_iter: Any, tol: Any
) -> None:
    """Raise for what cannot run under jit, and for bad parameters."""
    import numbers

    from xplearn.cluster._checks import _check_n_clusters, _is_int

    if isinstance(init, str) or callable(init):
        shown = init if isinstance(init, str) else "a callable"
        msg = (
            f"init={shown!r} cannot run under jax.jit: xplearn draws the initial "
            "centres on the host with numpy. Pass init as an array of shape "
            "(n_clusters, n_features), e.g. "
            "X[jax.random.choice(key, n_samples, (n_clusters,), replace=False)], "
            "or xplearn.cluster.kmeans_plusplus(X_host, n_clusters) computed "
            "outside the jitted function."
        )
        raise TypeError(msg)
    if n_init not in ("auto", 1):
        msg = f"Under jax.jit kmeans runs once from the given init: n_init={n_init!r}."
        raise ValueError(msg)
    if not _is_int(max_iter) or int(max_iter) < 1:
        msg = f"max_iter must be an integer >= 1, got {max_iter!r}."
        raise ValueError(msg)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or float(tol) < 0:
        msg = f"tol must be a number >= 0, got {tol!r}."
        raise ValueError(msg)
    _check_n_clusters(n_clusters, X.shape[0])


class _Lloyd:
    """One fit's centred data and the E- and M-steps on it."""

    def __init__(self, X: Any, w: Any, k: int) -> None:
        import jax.numpy as jnp

        self.X, self.w, self.k = X, w, k
        self.Xa, self.XX = augment_queries(X, jnp, multiple=1)  # [-2X, 1], ‖x‖²
        self.float64 = X.dtype == jnp.float64

    def nearest(self, C: Any) -> Any:
        """Labels of every point (the eager ``_nearest``).

        float64: rows with another centre within the expansion's rounding of
        the best are decided by differences (a ``lax.cond``: none, no cost).
        """
        import jax
        import jax.numpy as jnp

        Ca, cc = augment_centers(C, self.Xa.shape[1], jnp)
        D = self.Xa @ Ca
        labels = jnp.argmin(D, axis=1)  # the first minimum
        if not self.float64:
            return labels
        slack = 2.0 * rounding_bound(jnp, self.X.dtype, self.X.shape[1])
        err = slack * (self.XX + jnp.max(cc))
        best = jnp.min(D, axis=1)
        taken = jnp.arange(self.k)[None, :] == labels[:, None]
        second = jnp.min(jnp.where(taken, jnp.inf, D), axis=1)
        close = second - best <= err

        def exact() -> Any:
            lab = jnp.argmin(_kernels.diff_sq(self.X, C), axis=1)
            return jnp.where(close, lab, labels)

        return jax.lax.cond(jnp.any(close), exact, lambda: labels)

    def own_sq(self, C: Any, labels: Any) -> Any:
        """Squared distance of every point to its own centre, by differences."""
        import jax.numpy as jnp

        diff = self.X - jnp.take(C, labels, axis=0)
        return jnp.sum(diff * diff, axis=1)

    def relocate(self, C: Any, labels: Any, sums: Any, totals: Any) -> tuple[Any, Any]:
        """Move empty clusters to the points farthest from their centres.

        :func:`xplearn.cluster._lloyd._relocate_empty` with static shapes:
        the ``k`` farthest points (equally far: the higher index first) in
        order, the ``j``-th empty cluster takes the ``j``-th of them, which
        leaves its cluster; in the widest float.  All points on their
        centres, or no cluster empty: nothing moves.
        """
        import jax.numpy as jnp

        wide = _kernels.wide_dtype()
        dist = self.own_sq(C, labels)
        empty = totals == 0
        n_empty = jnp.sum(empty.astype(jnp.int32))
        far = jnp.argsort(dist, stable=True)[::-1][: self.k]
        used = jnp.arange(self.k) < n_empty
        w_far = jnp.take(self.w, far).astype(wide)
        xw = jnp.take(self.X, far, axis=0).astype(wide) * w_far[:, None]
        old = jnp.take(labels, far)
        s = sums.astype(wide).at[old].add(jnp.where(used[:, None], -xw, 0.0))
        t = totals.astype(wide).at[old].add(jnp.where(used, -w_far, 0.0))
        rank = jnp.clip(jnp.cumsum(empty.astype(jnp.int32)) - 1, 0)
        s = jnp.where(empty[:, None], jnp.take(xw, rank, axis=0), s)
        t = jnp.where(empty, jnp.take(w_far, rank), t)
        move = (n_empty > 0) & (jnp.max(dist) > 0)
        return (
            jnp.where(move, s.astype(sums.dtype), sums),
            jnp.where(move, t.astype(totals.dtype), totals),
        )

    def new_centers(self, C: Any, labels: Any) -> Any:
        """Run the M-step: weighted means, empty clusters relocated.

        A cluster still empty takes the heaviest cluster's centre (the first
        of equal weights), as the eager ``_new_centers``.
        """
        import jax.numpy as jnp

        sums, totals = segment_sums(self.X, labels, self.w, self.k, jnp)
        sums, totals = self.relocate(C, labels, sums, totals)
        empty = totals == 0
        safe = jnp.where(empty, jnp.ones_like(totals), totals)
        new = (sums / safe[:, None]).astype(self.X.dtype)
        heaviest = jnp.take(new, jnp.argmax(totals), axis=0)
        return jnp.where(empty[:, None], heaviest[None, :], new)


def kmeans(
    X: Any,
    n_clusters: int,
    *,
    sample_weight: Any,
    init: Any,
    n_init: Any,
    max_iter: int,
    tol: float,
    return_n_iter: bool,
) -> tuple[Any, ...]:
    """:func:`xplearn.cluster.kmeans` for a traced ``X`` (or ``init``)."""
    import jax
    import jax.numpy as jnp

    X = as_jax(X, "X")
    _check(X, n_clusters, init, n_init, max_iter, tol)
    X, _ = check_traced_array(X, "X")
    n, d = X.shape
    k = int(n_clusters)
    given, _ = check_traced_array(as_jax(init, "init"), "init", dtype=X.dtype)
    if tuple(given.shape) != (k, d):
        msg = (
            f"The shape of the initial centers {tuple(given.shape)} does not match "
            f"the number of clusters {k} and features {d}."
        )
        raise ValueError(msg)
    if sample_weight is None:
        w = jnp.ones((n,), dtype=X.dtype)
    else:
        w = as_jax(sample_weight, "sample_weight").astype(X.dtype)
        if w.shape != (n,):
            msg = (
                f"sample_weight has shape {tuple(w.shape)}; it needs one weight "
                f"per row of X, shape ({n},)."
            )
            raise ValueError(msg)
    # The safe scale of the data and the given centres, then the centred data:
    # the expansion's distances are more accurate there.
    e = _kernels.scale_exponent([X, given])
    Xs = _kernels.times_pow2(X, -e)
    mean = jnp.mean(Xs, axis=0)
    fit = _Lloyd(Xs - mean, w, k)
    wide = _kernels.wide_dtype()
    # scikit-learn's tolerance: the mean squared norm of the centred rows
    # over the feature count (the mean feature variance).
    tol_s = jnp.mean(fit.XX).astype(wide) / d * float(tol)
    centers = _kernels.times_pow2(given, -e) - mean

    def body(state: tuple[Any, ...]) -> tuple[Any, ...]:
        i, C, old, _, _ = state
        labels = fit.nearest(C)
        new = fit.new_centers(C, labels)
        shift = jnp.sum((new - C) ** 2).astype(wide)
        strict = (i > 0) & jnp.all(labels == old)
        stop = strict | (shift <= tol_s) | (i + 1 >= int(max_iter))
        return i + 1, new, labels, strict, stop

    no = jnp.asarray(False)
    labels0 = jnp.zeros((n,), dtype=jax.dtypes.canonicalize_dtype(jnp.int64))
    state = (jnp.asarray(0, jnp.int32), centers, labels0, no, no)
    n_iter, centers, labels, strict, _ = jax.lax.while_loop(
        lambda s: ~s[-1], body, state
    )
    # A last E-step, so that the labels match the centres.
    labels = jax.lax.cond(strict, lambda: labels, lambda: fit.nearest(centers))
    inertia = jnp.sum((fit.own_sq(centers, labels) * w).astype(wide))
    inertia = _kernels.times_pow2(inertia, 2 * e)
    centers = _kernels.times_pow2(centers + mean, e)
    labels = labels.astype(_kernels.indices_dtype())
    if return_n_iter:
        return centers, labels, inertia, n_iter
    return centers, labels, inertia
