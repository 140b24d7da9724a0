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


class RecordingScheduler(CountingScheduler):
    """A counting scheduler that records the shapes of the arrays it returns.

    What a compute returns is what the caller receives (on a cluster: what
    comes over the network to the client).
    """

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        out = super().__call__(dsk, keys, **kwargs)
        self._record(out)
        return out

    def _record(self, x: Any) -> None:
        if isinstance(x, list | tuple):
            for item in x:
                self._record(item)
        elif hasattr(x, "shape") and hasattr(x, "dtype"):
            self.shapes.append(tuple(x.shape))


@contextlib.contextmanager
def recording_dask() -> Iterator[RecordingScheduler]:
    """Run dask on a synchronous scheduler that records what it returns."""
    import dask

    sched = RecordingScheduler()
    with dask.config.set(scheduler=sched):
        yield sched
