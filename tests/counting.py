"""Count dask computes, as array-api-extra's ``lazy_xp_function`` does."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class CountingScheduler:
    """A dask scheduler that counts the graphs it runs (compute and persist)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        import dask

        self.count += 1
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def counting_dask() -> Iterator[CountingScheduler]:
    """Run dask on a synchronous scheduler that counts its rounds."""
    import dask

    sched = CountingScheduler()
    with dask.config.set(scheduler=sched):
        yield sched
