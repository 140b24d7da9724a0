"""One dispatch for traced input: TF graphs and ``jax.jit``.

Inside ``tf.function`` a query is a symbolic TF tensor, inside ``jax.jit``
(``vmap``, ``grad`` …) a jax tracer: arrays with a shape and a dtype but no
values yet.  The eager algorithms read values on the host (a finiteness
check, the certificate of the exact search, the scale of the data), which
a trace cannot do.  Such input goes to kernels with static shapes and no
host round trip instead: :mod:`xplearn.tensorflow` for TF,
:mod:`xplearn.jax` for jax.

:func:`traced_method` routes fitted estimators' query methods;
:func:`is_traced` lets the functional API do the same;
:func:`check_not_traced` is the clear error of everything else (``fit``,
``radius_neighbors``: their output or their work depends on the values).

Neither framework is imported here: both are looked up in ``sys.modules``
(a tracer exists only once jax is imported).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

# What xplearn answers under jax.jit, for the error of everything else.
JAX_JITTABLE = (
    "xplearn.neighbors.kneighbors, xplearn.metrics.pairwise_distances, "
    "xplearn.cluster.kmeans (with an array init), and fitted estimators' "
    "kneighbors, predict, predict_proba, transform and score"
)


def is_jax_tracer(x: object) -> bool:
    """Whether ``x`` is a jax tracer (an array inside ``jax.jit``, ``vmap`` …)."""
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    tracer = getattr(jax.core, "Tracer", None)
    return tracer is not None and isinstance(x, tracer)


def is_traced(x: object) -> bool:
    """Whether ``x`` has no values yet: a jax tracer or a symbolic TF tensor."""
    if is_jax_tracer(x):
        return True
    if "tensorflow" in sys.modules:
        from ._tensorflow import is_symbolic

        return is_symbolic(x)
    return False


def check_not_traced(x: Any, name: str = "X", what: str = "This call") -> None:
    """Raise ``TypeError`` for a jax tracer: ``what`` needs the values of ``x``.

    Symbolic TF tensors have their own message (:mod:`xplearn._tensorflow`).
    """
    if is_jax_tracer(x):
        msg = (
            f"{name} is a jax tracer (inside jax.jit, vmap or grad). {what} "
            "needs the values of the data (its output size or its work depends "
            f"on them), so it cannot be traced. Under jax.jit xplearn answers "
            f"{JAX_JITTABLE}; call anything else (fit, radius_neighbors, "
            "kneighbors_graph …) outside the jitted function."
        )
        raise TypeError(msg)


def traced_method(method: Callable[P, R]) -> Callable[P, R]:
    """Send a fitted estimator's query method to the traced kernels for traced X.

    With ``X`` (the first argument after ``self``) a symbolic TF tensor, the
    call is answered by :mod:`xplearn.tensorflow` in TF operations; with a
    jax tracer, by :mod:`xplearn.jax` in jax operations; any other call runs
    ``method``.  Without TensorFlow or jax in ``sys.modules`` this costs two
    dictionary lookups.
    """
    name = method.__name__

    @functools.wraps(method)
    def query(*args: P.args, **kwargs: P.kwargs) -> R:
        X = args[1] if len(args) > 1 else kwargs.get("X")
        if "tensorflow" in sys.modules:
            from ._tensorflow import is_symbolic

            if is_symbolic(X):
                from xplearn.tensorflow._hook import graph_call

                # Called as it is: autograph would otherwise convert the
                # kernels' Python, which builds the graph itself.
                tf = sys.modules["tensorflow"]
                call = tf.autograph.experimental.do_not_convert(graph_call)
                result: R = call(args[0], name, *args[1:], **kwargs)
                return result
        if is_jax_tracer(X):
            from xplearn.jax._hook import traced_call

            traced: R = traced_call(args[0], name, *args[1:], **kwargs)
            return traced
        return method(*args, **kwargs)

    return query
