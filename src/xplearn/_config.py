"""Configuration held in context variables.

Nothing here is read from the environment at import time: every setting has a
default in :data:`_DEFAULTS` and is changed by :func:`set_config` or, scoped,
by :func:`config_context`.  Context variables make the settings safe to change
from several threads or asyncio tasks at once; a new thread starts from the
defaults.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, Literal, TypedDict, cast

TFNamespace = Literal["auto", "torch", "numpy"]
Screening = Literal["auto", "all", "off"]
Pruning = Literal["auto", "off"]


class Config(TypedDict):
    """The settings :func:`get_config` returns."""

    working_memory: float | None
    tf_namespace: TFNamespace
    screening: Screening
    pruning: Pruning


_DEFAULTS: Config = {
    # MiB; None means "pick for the device" (1024 MiB on the host, a fraction
    # of free memory on a GPU), as scikit-learn's working_memory does for host.
    "working_memory": None,
    "tf_namespace": "auto",
    "screening": "auto",
    "pruning": "auto",
}

_CONFIG: contextvars.ContextVar[Config] = contextvars.ContextVar(
    "xplearn_config", default=_DEFAULTS
)

_TF_NAMESPACES = ("auto", "torch", "numpy")
_SCREENING = ("auto", "all", "off")
_PRUNING = ("auto", "off")


def get_config() -> Config:
    """Return a copy of the current xplearn configuration.

    Returns
    -------
    config : dict
        ``working_memory`` (MiB or None for the device default) and
        ``tf_namespace`` (where eager TensorFlow tensors are computed on).

    Examples
    --------
    >>> import xplearn
    >>> xplearn.get_config()["tf_namespace"]
    'auto'
    """
    return cast("Config", dict(_CONFIG.get()))


def _validated(updates: dict[str, Any]) -> dict[str, Any]:
    unknown = set(updates) - set(_DEFAULTS)
    if unknown:
        msg = (
            f"Unknown xplearn setting(s) {sorted(unknown)}; "
            f"the settings are {sorted(_DEFAULTS)}."
        )
        raise TypeError(msg)
    wm = updates.get("working_memory")
    if wm is not None and (
        isinstance(wm, bool) or not isinstance(wm, int | float) or not wm > 0
    ):
        msg = f"working_memory must be a positive number of MiB or None, got {wm!r}."
        raise ValueError(msg)
    ns = updates.get("tf_namespace", "auto")
    if ns not in _TF_NAMESPACES:
        msg = f"tf_namespace must be one of {_TF_NAMESPACES}, got {ns!r}."
        raise ValueError(msg)
    screening = updates.get("screening", "auto")
    if screening not in _SCREENING:
        msg = f"screening must be one of {_SCREENING}, got {screening!r}."
        raise ValueError(msg)
    pruning = updates.get("pruning", "auto")
    if pruning not in _PRUNING:
        msg = f"pruning must be one of {_PRUNING}, got {pruning!r}."
        raise ValueError(msg)
    return updates


def set_config(
    *,
    working_memory: float | Literal["unchanged"] | None = "unchanged",
    tf_namespace: TFNamespace | Literal["unchanged"] = "unchanged",
    screening: Screening | Literal["unchanged"] = "unchanged",
    pruning: Pruning | Literal["unchanged"] = "unchanged",
) -> None:
    """Change xplearn settings for the current context (thread or task).

    Parameters
    ----------
    working_memory : float or None, optional
        Budget in MiB for any temporary n×m block (distances, top-k,
        assignments).  ``None`` picks 1024 MiB on the host and a fraction of
        the free memory on a GPU.
    tf_namespace : {"auto", "torch", "numpy"}, optional
        Where eager TensorFlow tensors are computed: ``"auto"`` uses torch when
        it is installed (so a GPU tensor stays on the GPU) and numpy otherwise.
    screening : {"auto", "all", "off"}, optional
        ``"auto"``: on a CPU with bfloat16 dot-product instructions
        (AVX512-BF16, AMX), large float32 Euclidean k-NN searches screen
        candidates in bfloat16, then prove per query that the float32 answer
        is unchanged (queries without the proof are searched in float32).
        ``"all"``: also float32 KMeans Lloyd E-steps (``algorithm="lloyd"``,
        64 features or more) compute the point–centre products in bfloat16
        and keep a label only where it is proved to be the float32 E-step's
        (the other points are labelled in float32); opt-in while its
        whole-fit speed is unsettled (faster once the centres settle,
        slower over the first iterations from random centres); and the k-NN
        screen centres each query on the nearest of a few pivots (coarse
        k-means centres of the database), which lets the proof hold on
        clustered data, where from the database mean it fails (opt-in: on
        32 features it was not shown faster than float32).  numpy
        input takes either through zero-copy torch views when torch is
        installed.  ``"off"``: float32 throughout.  The
        results are the same whichever is set; only the time differs.
    pruning : {"auto", "off"}, optional
        ``"auto"``: large Euclidean k-NN searches on the host (numpy, torch
        CPU) cut the database into blocks around a few pivots (a coarse
        k-means of a sample) and skip every block that the triangle
        inequality proves too far from a query to hold a neighbour or a tie;
        a probe of a few hundred queries first estimates whether that skips
        enough (clustered data: classes, blobs) and otherwise the plain
        search runs.  ``"off"``: every query against every row.  The results
        are the same whichever is set; only the time differs.

    Examples
    --------
    >>> import xplearn
    >>> xplearn.set_config(working_memory=256)
    >>> xplearn.get_config()["working_memory"]
    256
    >>> xplearn.set_config(working_memory=None)
    """
    updates = {
        k: v
        for k, v in (
            ("working_memory", working_memory),
            ("tf_namespace", tf_namespace),
            ("screening", screening),
            ("pruning", pruning),
        )
        if not (isinstance(v, str) and v == "unchanged")
    }
    _CONFIG.set(cast("Config", {**_CONFIG.get(), **_validated(updates)}))


@contextlib.contextmanager
def config_context(**settings: Any) -> Iterator[Config]:
    """Change xplearn settings inside a ``with`` block only.

    Parameters
    ----------
    **settings
        Any of the keyword arguments of :func:`set_config`.

    Yields
    ------
    config : dict
        The configuration in force inside the block.

    Examples
    --------
    >>> import xplearn
    >>> with xplearn.config_context(tf_namespace="numpy"):
    ...     xplearn.get_config()["tf_namespace"]
    'numpy'
    >>> xplearn.get_config()["tf_namespace"]
    'auto'
    """
    token = _CONFIG.set(cast("Config", {**_CONFIG.get(), **_validated(settings)}))
    try:
        yield get_config()
    finally:
        _CONFIG.reset(token)
