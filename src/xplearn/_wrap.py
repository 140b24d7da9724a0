"""``xplearn.wrap``: any scikit-learn estimator, taking and returning tensors.

For algorithms xplearn has not ported.  The conversion is explicit and goes
through ``_convert`` (DLPack first, a copy to the host where the estimator
needs numpy); outputs go back to the framework and device of the ``X`` given
to each method.  Not loaded by ``import xplearn``: it imports scikit-learn.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._convert import to_numpy
from ._dispatch import Edge


def _inner_has(name: str) -> Any:
    def check(self: Wrapped) -> bool:
        inner = getattr(self, "estimator_", self.estimator)
        return hasattr(inner, name)

    return check


def _host(x: Any) -> Any:
    return None if x is None else to_numpy(x)


class Wrapped(MetaEstimatorMixin, BaseEstimator):  # type: ignore[misc]
    """A scikit-learn estimator that accepts and returns any framework's arrays.

    Made by :func:`xplearn.wrap`.  Methods exist exactly when the wrapped
    estimator has them.  ``get_params``/``set_params`` reach the wrapped
    estimator's parameters as ``estimator__<name>``, so it works in
    ``Pipeline`` and ``GridSearchCV``.  Fitted attributes of the wrapped
    estimator (``coef_``, ``classes_`` …) are read through, as numpy.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Cloned at fit time; the clone is ``estimator_``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> import xplearn
    >>> xplearn.wrap(StandardScaler()).fit_transform(np.array([[1.0], [3.0]]))
    array([[-1.],
           [ 1.]])
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import get_tags

        tags = get_tags(self.estimator)
        tags.array_api_support = True
        return tags

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> Wrapped:
        """Fit a clone of the estimator on host copies of the data.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : array-like, optional
            Targets, any framework.
        **fit_params
            Passed on; arrays among them (``sample_weight``) go to numpy.

        Returns
        -------
        self : Wrapped
        """
        _, Xh = Edge.host(X)
        params = {k: _host(v) if _is_arraylike(v) else v for k, v in fit_params.items()}
        self.estimator_ = clone(self.estimator).fit(Xh, _host(y), **params)
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def _call(self, method: str, X: Any, *args: Any, **kwargs: Any) -> Any:
        check_is_fitted(self, "estimator_")
        edge, Xh = Edge.host(X)
        args = tuple(_host(a) if _is_arraylike(a) else a for a in args)
        return edge.to_caller(getattr(self.estimator_, method)(Xh, *args, **kwargs))

    @available_if(_inner_has("predict"))
    def predict(self, X: Any, **kwargs: Any) -> Any:
        """``estimator_.predict``, answered in ``X``'s framework and device."""
        return self._call("predict", X, **kwargs)

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """``estimator_.predict_proba``, answered in ``X``'s framework."""
        return self._call("predict_proba", X)

    @available_if(_inner_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """``estimator_.predict_log_proba``, answered in ``X``'s framework."""
        return self._call("predict_log_proba", X)

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """``estimator_.decision_function``, answered in ``X``'s framework."""
        return self._call("decision_function", X)

    @available_if(_inner_has("transform"))
    def transform(self, X: Any) -> Any:
        """``estimator_.transform``, answered in ``X``'s framework and device."""
        return self._call("transform", X)

    @available_if(_inner_has("inverse_transform"))
    def inverse_transform(self, X: Any) -> Any:
        """``estimator_.inverse_transform``, answered in ``X``'s framework."""
        return self._call("inverse_transform", X)

    @available_if(_inner_has("fit_transform"))
    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit, then return the transformed ``X`` in its own framework."""
        return self.fit(X, y, **fit_params)._call("transform", X)

    @available_if(_inner_has("score"))
    def score(self, X: Any, y: Any = None, **kwargs: Any) -> float:
        """``estimator_.score`` on host copies of the data."""
        check_is_fitted(self, "estimator_")
        _, Xh = Edge.host(X)
        return float(self.estimator_.score(Xh, _host(y), **kwargs))

    def __getattr__(self, name: str) -> Any:
        # Fitted attributes of the wrapped estimator (coef_, classes_ …).
        if name.endswith("_") and not name.startswith("__") and name != "estimator_":
            inner = self.__dict__.get("estimator_")
            if inner is not None and hasattr(inner, name):
                return getattr(inner, name)
        msg = f"{type(self).__name__!r} object has no attribute {name!r}"
        raise AttributeError(msg)


def _is_arraylike(v: Any) -> bool:
    from ._namespace import is_array

    return is_array(v) or isinstance(v, list | tuple)


def wrap(estimator: Any) -> Wrapped:
    """Let any scikit-learn estimator take and return torch, jax, TF, dask … data.

    For algorithms xplearn has not ported (``LogisticRegression``, ``PCA``,
    ``StandardScaler`` …).  The data is converted explicitly: by DLPack to a
    host numpy array (a copy from a GPU), and each output back to the
    framework and device of the ``X`` passed to the method.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Any estimator; it is cloned at fit time.

    Returns
    -------
    wrapped : Wrapped
        A scikit-learn meta-estimator (Pipeline, GridSearchCV, clone, pickle).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> import xplearn
    >>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    >>> xplearn.wrap(LogisticRegression()).fit(X, y).predict(X)
    array([0, 0, 1, 1])
    """
    return Wrapped(estimator)
