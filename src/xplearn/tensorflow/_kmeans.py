"""KMeans fitted in TensorFlow operations (:func:`xplearn.tensorflow.kmeans`).

A port of :func:`xplearn.cluster._lloyd._lloyd` and of the setup of
``KMeans.fit`` to TF ops, so that it runs inside ``tf.function``:

* the data is taken to its safe power-of-two scale and centred on its mean;
  ``tol`` is scaled by the mean feature variance (scikit-learn's rule);
* each E-step is one matmul of the augmented operands ``[−2x, 1] @ [cᵀ; ‖c‖²]``
  and the first minimum of each row; float64 re-checks near ties by
  differences (ties to the lower index), float32 takes the product's
  rounding, as the eager estimator and scikit-learn do;
* each M-step a weighted ``unsorted_segment_sum``; empty clusters take the
  points farthest from their centres (the higher index first among equally
  far), in float64, and a cluster still empty the heaviest one's centre;
* the ``tf.while_loop`` stops on strict convergence or a centre shift within
  the tolerance; a last E-step makes the labels match the centres.

k-means++ and "random" draw with TF's stateless random numbers.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from xplearn.neighbors._search import rounding_bound

from ._graph import Scale, exact_sq, first_max, first_min, max_abs


def _check_params(n_clusters: Any, init: Any, max_iter: Any, tol: Any) -> None:
    def is_int(v: object) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if not is_int(n_clusters) or int(n_clusters) < 1:
        msg = f"n_clusters must be an integer >= 1, got {n_clusters!r}."
        raise ValueError(msg)
    if not is_int(max_iter) or int(max_iter) < 1:
        msg = f"max_iter must be an integer >= 1, got {max_iter!r}."
        raise ValueError(msg)
    if (
        isinstance(tol, bool)
        or not isinstance(tol, numbers.Real)
        or not float(tol) >= 0
    ):
        msg = f"tol must be a number >= 0, got {tol!r}."
        raise ValueError(msg)
    if isinstance(init, str) and init not in ("k-means++", "random"):
        msg = f"init must be 'k-means++', 'random' or an array, got {init!r}."
        raise ValueError(msg)


def _check_input(X: Any) -> Any:
    """``X`` as a float tensor of rank 2 with a known feature count, or raise."""
    import tensorflow as tf

    if isinstance(X, tf.Variable):
        X = X.value()
    X = tf.convert_to_tensor(X)
    if X.shape.rank != 2:
        msg = (
            f"X must be a 2-D tensor (n_samples, n_features); got shape {X.shape}. "
            "Reshape it with tf.reshape(x, [-1, 1]) for a single feature."
        )
        raise ValueError(msg)
    if X.shape[1] is None:
        msg = (
            "X's feature count must be known while tracing: give it in the "
            "input signature, e.g. tf.TensorSpec([None, n_features])."
        )
        raise ValueError(msg)
    if X.dtype not in (tf.float32, tf.float64):
        if not (X.dtype.is_floating or X.dtype.is_integer or X.dtype.is_bool):
            msg = f"Unsupported dtype {X.dtype.name}: KMeans needs numeric data."
            raise ValueError(msg)
        X = tf.cast(X, tf.float32)  # ints, bools, float16 and bfloat16
    return tf.debugging.check_numerics(
        X, "Input X contains NaN or infinity. Remove or impute those samples"
    )


def _weights(sample_weight: Any, n: Any, dtype: Any) -> Any:
    import tensorflow as tf

    if sample_weight is None:
        return tf.ones([n], dtype=dtype)
    w = tf.ensure_shape(tf.cast(sample_weight, dtype), [None])
    tf.debugging.assert_equal(
        tf.shape(w)[0], n, message="sample_weight needs one weight per row of X"
    )
    tf.debugging.assert_non_negative(
        w, message="Negative values in data passed to sample_weight"
    )
    tf.debugging.assert_positive(
        tf.reduce_max(w), message="Sample weights must contain a non-zero number"
    )
    return w


def _seed(seed: Any) -> Any:
    """Return a shape (2,) int64 seed for the stateless random ops."""
    import tensorflow as tf

    if seed is None:  # a fresh seed per call, from TF's global generator
        return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
    if isinstance(seed, numbers.Integral):
        return tf.constant([int(seed), 0], dtype=tf.int64)
    return tf.ensure_shape(tf.cast(seed, tf.int64), [2])


class _Lloyd:
    """One fit's centred data and the E- and M-steps on it."""

    def __init__(self, X: Any, w: Any, k: int) -> None:
        import tensorflow as tf

        self.X, self.w, self.k = X, w, k
        self.n = tf.shape(X)[0]
        self.d = int(X.shape[1])
        self.XX = tf.reduce_sum(X * X, axis=1)
        ones = tf.ones([self.n, 1], dtype=X.dtype)
        self.Xa = tf.concat([-2.0 * X, ones], axis=1)
        self.float64 = X.dtype == tf.float64

    def nearest(self, C: Any) -> Any:
        """Labels of every point (int32): the first minimum of the expansion.

        float64: rows with another centre within the expansion's rounding
        of the best are decided by differences, as the eager estimator does.
        """
        import tensorflow as tf

        CC = tf.reduce_sum(C * C, axis=1)
        D = tf.matmul(self.Xa, tf.concat([tf.transpose(C), CC[None, :]], axis=0))
        labels = first_min(D)
        if not self.float64:
            return labels
        slack = 2.0 * rounding_bound(np, np.dtype(np.float64), self.d)
        near = slack * (self.XX + tf.reduce_max(CC))
        best = tf.reduce_min(D, axis=1)
        hits = tf.reduce_sum(tf.cast((best + near)[:, None] >= D, tf.int32), axis=1)
        close = tf.cast(tf.reshape(tf.where(hits > 1), [-1]), tf.int32)
        exact = first_min(exact_sq(tf.gather(self.X, close), C[None, :, :]))
        return tf.tensor_scatter_nd_update(labels, close[:, None], exact)

    def own_sq(self, C: Any, labels: Any) -> Any:
        """Squared distance of every point to its own centre, by differences."""
        import tensorflow as tf

        diff = self.X - tf.gather(C, labels)
        return tf.reduce_sum(diff * diff, axis=1)

    def sums(self, labels: Any) -> tuple[Any, Any]:
        """Weighted sums of the points per label, and the weight per label."""
        import tensorflow as tf

        sums = tf.math.unsorted_segment_sum(self.X * self.w[:, None], labels, self.k)
        return sums, tf.math.unsorted_segment_sum(self.w, labels, self.k)

    def relocate(self, C: Any, labels: Any, sums: Any, totals: Any) -> tuple[Any, Any]:
        """Move empty clusters to the points farthest from their centres.

        :func:`xplearn.cluster._lloyd._relocate_empty`, vectorised: the
        farthest points (equally far: the higher index first) leave their
        clusters, one per empty cluster in index order; in float64, as the
        eager path computes it on the host.  All points on their centres:
        nothing moves.
        """
        import tensorflow as tf

        dist = self.own_sq(C, labels)

        def move() -> tuple[Any, Any]:
            empty = tf.cast(tf.reshape(tf.where(tf.equal(totals, 0.0)), [-1]), tf.int32)
            order = tf.argsort(dist, stable=True)  # ascending, ties by index
            far = tf.reverse(order, axis=[0])[: tf.shape(empty)[0]]
            w_far = tf.cast(tf.gather(self.w, far), tf.float64)
            xw = tf.cast(tf.gather(self.X, far), tf.float64) * w_far[:, None]
            old = tf.gather(labels, far)[:, None]
            s = tf.cast(sums, tf.float64)
            s = tf.tensor_scatter_nd_sub(s, old, xw)
            s = tf.tensor_scatter_nd_update(s, empty[:, None], xw)
            t = tf.cast(totals, tf.float64)
            t = tf.tensor_scatter_nd_update(t, empty[:, None], w_far)
            t = tf.tensor_scatter_nd_sub(t, old, w_far)
            return tf.cast(s, sums.dtype), tf.cast(t, totals.dtype)

        moved: tuple[Any, Any] = tf.cond(
            tf.reduce_max(dist) > 0.0, move, lambda: (tf.identity(sums), totals)
        )
        return moved

    def new_centers(self, C: Any, labels: Any) -> Any:
        """Run the M-step: weighted means, empty clusters relocated.

        A cluster still empty (more clusters than distinct points) takes
        the heaviest cluster's centre (the first of equal weights).
        """
        import tensorflow as tf

        sums, totals = self.sums(labels)
        sums, totals = tf.cond(
            tf.reduce_any(tf.equal(totals, 0.0)),
            lambda: self.relocate(C, labels, sums, totals),
            lambda: (tf.identity(sums), totals),
        )
        empty = tf.equal(totals, 0.0)
        safe = tf.where(empty, tf.ones_like(totals), totals)
        new = sums / safe[:, None]
        heaviest = tf.gather(new, first_max(totals[None, :]))
        return tf.where(empty[:, None], heaviest, new)

    def inertia(self, C: Any, labels: Any) -> Any:
        """Weighted sum of the squared distances to the own centres."""
        import tensorflow as tf

        return tf.reduce_sum(self.own_sq(C, labels) * self.w)


def _kmeans_plusplus(fit: _Lloyd, seed: Any) -> Any:
    """Greedy k-means++ (scikit-learn's), with stateless random numbers.

    The first centre is drawn with probability proportional to the weights;
    each next one is the best (least potential) of ``2 + log k`` candidates
    drawn proportional to weight × squared distance to the nearest centre.
    """
    import tensorflow as tf

    X, w, k = fit.X, fit.w, fit.k
    n = fit.n
    trials = 2 + int(math.log(k))

    def draw(i: int | Any, weights: Any, size: int) -> Any:
        """Rows drawn with probability proportional to ``weights`` (float64)."""
        s = tf.random.experimental.stateless_fold_in(seed, i)
        cum = tf.math.cumsum(tf.cast(weights, tf.float64))
        u = tf.random.stateless_uniform([size], s, dtype=tf.float64) * cum[-1]
        rows = tf.searchsorted(cum, u, side="left")
        return tf.minimum(tf.cast(rows, tf.int32), n - 1)

    def sqdist(rows: Any) -> Any:
        C = tf.gather(X, rows)
        CC = tf.reduce_sum(C * C, axis=1)
        D = CC[:, None] - 2.0 * tf.matmul(C, X, transpose_b=True) + fit.XX[None, :]
        return tf.maximum(D, 0.0)

    first = draw(0, w, 1)
    closest = sqdist(first)[0]
    chosen = tf.tensor_scatter_nd_update(tf.zeros([k], tf.int32), [[0]], first)

    def body(c: Any, closest: Any, chosen: Any) -> tuple[Any, Any, Any]:
        cand = draw(c, closest * w, trials)
        D = tf.minimum(closest[None, :], sqdist(cand))
        pots = tf.reduce_sum(D * w[None, :], axis=1)
        best = first_min(pots[None, :])[0]
        chosen = tf.tensor_scatter_nd_update(chosen, [[c]], [cand[best]])
        return c + 1, D[best], chosen

    _, _, chosen = tf.while_loop(
        lambda c, *_: c < k, body, (tf.constant(1), closest, chosen)
    )
    return tf.gather(X, chosen)


def _random_rows(fit: _Lloyd, seed: Any) -> Any:
    """``k`` distinct rows, drawn with probability proportional to the weights.

    Sequential weighted draws without replacement, as one top-k of
    ``log w + Gumbel noise`` (the Gumbel-top-k trick).
    """
    import tensorflow as tf

    u = tf.random.stateless_uniform([fit.n], seed, dtype=tf.float64, minval=1e-300)
    keys = tf.math.log(tf.cast(fit.w, tf.float64)) - tf.math.log(-tf.math.log(u))
    return tf.gather(fit.X, tf.math.top_k(keys, fit.k).indices)


def kmeans(
    X: Any,
    n_clusters: int,
    *,
    init: Any,
    max_iter: int,
    tol: float,
    sample_weight: Any,
    seed: Any,
) -> tuple[Any, Any, Any, Any]:
    """:func:`xplearn.tensorflow.kmeans` (validated here)."""
    import tensorflow as tf

    _check_params(n_clusters, init, max_iter, tol)
    k = int(n_clusters)
    X = _check_input(X)
    dtype = X.dtype
    n, d = tf.shape(X)[0], int(X.shape[1])
    tf.debugging.assert_greater_equal(
        n, k, message=f"n_samples should be >= n_clusters={k}; pass more samples"
    )
    w = _weights(sample_weight, n, dtype)
    given = None
    if not isinstance(init, str):
        given = tf.cast(tf.convert_to_tensor(init), dtype)
        shape = given.shape
        if shape.rank != 2 or not shape.is_compatible_with([k, d]):
            msg = (
                f"The shape of the initial centers {shape} does not match the "
                f"number of clusters {k} and features {d}."
            )
            raise ValueError(msg)
        given = tf.debugging.check_numerics(
            tf.ensure_shape(given, [k, d]), "init must be finite"
        )
    # The safe scale of the data (and the given centres), then the centred
    # data: the expansion's distances are more accurate there.
    scale = Scale(dtype.as_numpy_dtype, d)
    M = max_abs(X) if given is None else tf.maximum(max_abs(X), max_abs(given))
    e = scale.exponent(M)
    Xs = scale.times_pow2(X, -e)
    mean = tf.reduce_mean(Xs, axis=0)
    fit = _Lloyd(Xs - mean, w, k)
    # scikit-learn's tolerance: the mean squared norm of the centred rows over
    # the feature count (the mean feature variance), in float64 as the eager
    # path has it.
    tol64 = tf.cast(tf.reduce_mean(fit.XX), tf.float64) / d * float(tol)
    if given is not None:
        centers = scale.times_pow2(given, -e) - mean
    elif init == "k-means++":
        centers = _kmeans_plusplus(fit, _seed(seed))
    else:
        centers = _random_rows(fit, _seed(seed))

    def body(i: Any, C: Any, old: Any, strict: Any, stop: Any) -> tuple[Any, ...]:
        labels = fit.nearest(C)
        new = fit.new_centers(C, labels)
        shift = tf.cast(tf.reduce_sum(tf.square(new - C)), tf.float64)
        strict = (i > 0) & tf.reduce_all(tf.equal(labels, old))
        stop = strict | (shift <= tol64) | (i + 1 >= int(max_iter))
        return i + 1, new, labels, strict, stop

    n_iter, centers, labels, strict, _ = tf.while_loop(
        lambda *v: tf.logical_not(v[-1]),
        body,
        (tf.constant(0), centers, tf.zeros([n], tf.int32), False, False),
    )
    # A last E-step, so that the labels match the centres.
    labels = tf.cond(strict, lambda: tf.identity(labels), lambda: fit.nearest(centers))
    inertia = scale.times_pow2(fit.inertia(centers, labels), 2 * e)
    centers = scale.times_pow2(centers + mean, e)
    return centers, tf.cast(labels, tf.int64), inertia, n_iter
