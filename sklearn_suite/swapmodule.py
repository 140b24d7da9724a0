"""A scikit-learn module whose xplearn-provided names are xplearn's."""

from __future__ import annotations

import importlib
import types
from typing import Any

_TARGETS = {
    "sklearn.neighbors": "xplearn.neighbors",
    "sklearn.cluster": "xplearn.cluster",
}


class _Swapped(types.ModuleType):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._sk = importlib.import_module(name)
        self._xp = importlib.import_module(_TARGETS[name])

    def __getattr__(self, attr: str) -> Any:
        if attr in self._xp.__all__:
            return getattr(self._xp, attr)
        return getattr(self._sk, attr)


def module(name: str) -> types.ModuleType:
    """``name`` (a scikit-learn module) with xplearn's exported names."""
    return _Swapped(name)
