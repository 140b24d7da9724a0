"""Exact bfloat16 screening of the float32 Lloyd E-step on a CPU.

The E-step's work is the product ``‖c‖² − 2 x·c`` of every point with every
centre and an argmin per point.  On CPUs with bfloat16 dot-product
instructions torch's bfloat16 product runs 3–4× faster than float32's
(PERF-NOTES.md), so the screen computes ``−2 x·c`` in bfloat16 (the points
converted once per fit, the centres once per iteration), adds ``‖c‖²`` in
float32, and keeps a point's label only when it is *proved* to be the float32
E-step's label: every other centre's screened value exceeds the least one by
more than twice the screen's error bound plus twice the float32 expansion's
(:func:`xplearn.neighbors._search.rounding_bound`).  Then the float32 path,
whose values are within its own bound of exact arithmetic, has that centre
as its unique argmin as well.  The other points (near-ties, a few percent on
overlapping clusters) are labelled by the float32 path itself, so the labels
are the float32 path's.

The bound, for centred float32 points ``x`` and centres ``c``
(``u = 2**-8`` bfloat16's unit roundoff, ``v = 2**-24`` float32's, ``d`` the
features, ``γ_d = d·v/(1 − d·v)``, ``P = 2‖x‖·max‖c‖``, ``M² = max‖c‖²``):
inputs rounded to bfloat16 move ``−2 x·c`` by at most ``(2u + u²)·P``; the
float32 accumulation adds ``γ_d·(1 + u)²·P``; rounding the product to
bfloat16 ``u·(1 + u)²·(1 + γ_d)·P``; adding ``‖c‖²`` in float32
``v·(M²·(1 + γ_d) + (1 + 4u)·P)``; ``‖c‖²`` itself ``γ_d·M²``; inputs or
products flushed below float32's normal range ``d·2⁻¹²⁵·(‖x‖ + M + 4)``.
The comparison against ``least + bound`` is itself rounded, which
``v·(M² + 2P + bound)`` covers.

The reductions run on numpy views of the tile (numpy's column-wise ``min``
and comparisons vectorise; torch's ``min(dim=0)`` with indices ran 30×
slower here); the label of a point with one centre within the bound is the
first index at or below ``least + bound``.

It runs under ``config_context(screening="all")`` only (opt-in), from 64
features on.  Measured on this 2-core Zen 5 (200 000 points, k = 64):
once the centres settle, 13.6 ms an E-step against 22.7 for float32 at
d = 128 (iterations 6–45 of a fit: 16.6 against 26.0 ms each); at d = 32
8.2 against 9.0, too little to pay for the first iterations, where from
random centres a third of the points can be near-ties (past a quarter the
screen hands the E-step to float32 and pauses).  Over whole 20-iteration
fits from random centres ``benchmarks/results/kmeans.md`` (d) measured it
slower, hence opt-in.  numpy input takes it through zero-copy torch views
when torch is installed; labels, centres and inertia do not change, only
the time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

from xplearn._config import get_config
from xplearn.neighbors._screen import bf16_is_fast, host_float32
from xplearn.neighbors._search import on_host_threads, rounding_bound, torch_threads

_U = 2.0**-8  # bfloat16 unit roundoff
_V = 2.0**-24  # float32 unit roundoff
# Below this many multiply-adds per E-step the conversions cost more than the
# screen saves.
_MIN_WORK = 2**24
# Screened values per tile: the tile (k × rows, float32) stays in the cache.
_TILE_ELEMENTS = 2**18
# Below this many features the float32 product is too cheap for the screen's
# extra passes to pay: at 200 000 × 32, k = 64, a screened E-step took 8.2 ms
# against 9.0 for float32 with converged centres, 12.6 against 8.7 from
# random ones (the near-ties redone); at d = 128 13.6 against 22.7.
_MIN_FEATURES = 64
# Past this fraction of uncertified points the screen stops for this E-step
# and pauses for the next few: the redo costs float32's time again (35% of
# the points from random centres at d = 128 made the screen slower).
_MAX_FAILED = 0.25
_PAUSE = 8
# Norms beyond this are not screened: the bound's terms would overflow.
_MAX_NORM = 2.0**40


def screen_applies(X: Any, k: int, xp: ModuleType) -> bool:
    """Whether the float32 E-step of ``X`` (centred samples) should be screened."""
    if get_config()["screening"] != "all" or k < 2 or not host_float32(X, xp):
        return False
    n, d = X.shape
    return d >= _MIN_FEATURES and n * k * d >= _MIN_WORK and bf16_is_fast()


class LloydScreen:
    """A fit's bfloat16 points and the per-iteration screened E-step.

    Parameters
    ----------
    X : float32 array of shape (n_samples, n_features)
        The centred samples (numpy, or a torch CPU tensor).
    XX : float32 array of shape (n_samples,)
        Their computed squared norms.
    """

    def __init__(self, X: Any, XX: Any) -> None:
        import numpy as np
        import torch

        Xt = _torch_view(X)
        n, self.d = Xt.shape
        # -2·x in bfloat16 is exactly -2 times x's rounding: scaled in place
        # after the conversion (no float32 temporary).
        with torch.no_grad():
            self.Xb = Xt.to(torch.bfloat16).mul_(-2.0)
        XXh = _numpy_view(XX).astype(np.float64)
        # The computed norms are within γ_d of the true ones.
        gd = self.d * _V / (1 - self.d * _V)
        self.XX = XXh * (1 + gd)
        self.xn = np.sqrt(self.XX)
        self.fp32 = rounding_bound(np, np.float32, self.d)
        big = float(self.XX.max()) if n else 0.0
        self.usable = big < _MAX_NORM**2
        self.paused = 0
        self.screened = 0  # points labelled by the screen (for tests)
        self.redone = 0  # points sent back to float32

    def labels(
        self, C: Any, workers: int, finish: Callable[[int, int, Any, Any, int], Any]
    ) -> tuple[Any, list[Any]] | None:
        """Label every point; the float32 path labels the uncertified ones.

        The points are split into ``workers`` contiguous shares (one share
        below eight tiles per worker), each on a host thread running torch
        on one thread.  After its tiles, each share calls ``finish(lo, hi,
        labels, rows, tail)``, which must label ``rows`` (numpy int64: the
        share's points the screen did not certify) and ``tail:hi`` (where the
        share gave up; ``hi`` if it did not) with the float32 path, and may
        sum the share (the fused M-step).

        Returns ``None`` when the screen does not run for these centres
        (paused after a hopeless E-step, or norms beyond its range); else
        ``(labels, [finish's results per share])``, labels numpy int64.
        """
        import numpy as np
        import torch

        if not self.usable:
            return None
        if self.paused:
            self.paused -= 1
            return None
        Ct = _torch_view(C)
        k = Ct.shape[0]
        cc = torch.einsum("ij,ij->i", Ct, Ct)
        M2 = float(cc.max()) * (1 + (self.d + 2) * _V)
        if not M2 < _MAX_NORM**2:
            return None
        with torch.no_grad():
            CbT = Ct.to(torch.bfloat16)  # (k, d)
        bound = self._bound(math.sqrt(M2), M2)
        n = self.Xb.shape[0]
        labels = np.empty(n, dtype=np.int64)
        step = max(1, min(n, _TILE_ELEMENTS // k))
        gave_up = []

        def share(lo: int, hi: int) -> Any:
            bad, tail = self._tiles(CbT, cc[:, None], bound, labels, lo, hi, step)
            rows = np.concatenate(bad) if bad else np.empty(0, dtype=np.int64)
            gave_up.append(tail < hi)
            redone = rows.shape[0] + hi - tail
            self.redone += redone  # (ints: atomic enough under the GIL)
            self.screened += hi - lo - redone
            return finish(lo, hi, labels, rows, tail)

        # (The products and conversions are cache-sized: torch's own threads
        # would cost more in hand-offs than they share.)
        with torch.no_grad(), torch_threads(1):
            parts = on_host_threads(share, n, workers if n >= 8 * step else 1)
        if any(gave_up):
            self.paused = _PAUSE
        return labels, parts

    def _tiles(
        self,
        CbT: Any,
        cc: Any,
        bound: Any,
        labels: Any,
        lo: int,
        hi: int,
        step: int,
    ) -> tuple[list[Any], int]:
        """Label points ``lo:hi`` tile by tile; return (uncertified rows, tail).

        ``tail`` is ``hi``, or where the share gave up: the points from there
        on are left to float32 (the caller labels them as a slice).

        Per tile: the bfloat16 product into a reused buffer, ``‖c‖²`` added in
        float32, then on numpy views the least value per point, the entries
        at or below ``least + bound`` and the first of them (``k − max(hit ·
        (k − j))``); a tile with more entries than points has near-ties, and
        those points are returned.
        """
        import numpy as np
        import torch

        k = CbT.shape[0]
        code = np.uint8 if k < 2**8 else np.uint16 if k < 2**16 else np.uint32
        rev = (k - np.arange(k)).astype(code)[:, None]
        D16 = torch.empty((k, step), dtype=torch.bfloat16)
        D32 = torch.empty((k, step), dtype=torch.float32)
        Dn = D32.numpy()
        hit = np.empty((k, step), dtype=bool)
        hit8 = hit.view(np.uint8)  # 0 or 1
        mask = np.empty((k, step), dtype=code)
        thr = np.empty(step, dtype=np.float32)
        bad: list[Any] = []
        failed = 0
        for i in range(lo, hi, step):
            m = min(step, hi - i)
            prod = torch.mm(CbT, self.Xb[i : i + m].T, out=D16[:, :m])
            torch.add(prod, cc, out=D32[:, :m])
            D = Dn[:, :m]
            np.add(D.min(axis=0), bound[i : i + m], out=thr[:m])
            h, h8, mk = hit[:, :m], hit8[:, :m], mask[:, :m]
            np.less_equal(D, thr[:m], out=h)
            # hit · (k − j) by bit masks (numpy's small-integer multiply
            # does not vectorise): 0 − 1 is all ones in unsigned arithmetic.
            np.subtract(0, h8, out=mk, dtype=code)
            np.bitwise_and(mk, rev, out=mk)
            labels[i : i + m] = k - mk.max(axis=0)
            if np.count_nonzero(h) > m:  # some point has a near-tie
                if k < 2**8 - 1:
                    many = h8.sum(axis=0, dtype=np.uint8) > 1
                else:
                    many = np.count_nonzero(h, axis=0) > 1
                bad.append(i + np.flatnonzero(many))
                failed += bad[-1].shape[0]
            done = i + m - lo
            if i + m < hi and done >= (hi - lo) // 4 and failed > _MAX_FAILED * done:
                # Overlapping clusters at this scale: float32 for the rest.
                return bad, i + m
        return bad, hi

    def _bound(self, M: float, M2: float) -> Any:
        """Per point: twice the screen's and the float32 path's error, float32.

        The module docstring's terms, gathered as ``c1·‖x‖ + c2·‖x‖² + c0``
        (``P = 2‖x‖·M``), in float64 and rounded up into float32.
        """
        import numpy as np

        u, v, d = _U, _V, self.d
        gd = d * v / (1 - d * v)
        per_P = (
            (2 * u + u * u)
            + gd * (1 + u) ** 2
            + u * (1 + u) ** 2 * (1 + gd)
            + v * (1 + 4 * u)
        )
        # Subnormal inputs or products flushed to zero: each term is off by
        # less than 2⁻¹²⁶ times the larger operand (or 2⁻¹²⁶ itself).
        flush = d * 2.0**-125
        const = v * M2 * (1 + gd) + gd * M2 + flush * (M + 4.0)
        # b = 2·(screen + fp32); then b·(1 + 1.01v) + 1.01v·(M² + 2P).
        grow = 1 + 1.01 * v
        c1 = (2 * per_P * grow + 2.02 * v) * 2 * M + 2 * flush * grow
        c2 = 2 * self.fp32 * grow
        c0 = 2 * (const + self.fp32 * M2) * grow + 1.01 * v * M2
        b = c1 * self.xn
        b += c2 * self.XX
        b += c0
        b *= 1 + 2.0**-20
        return b.astype(np.float32)


def _torch_view(a: Any) -> Any:
    """Return a zero-copy torch CPU view of a numpy array or torch tensor."""
    import torch

    if isinstance(a, torch.Tensor):
        return a.detach()
    return torch.from_numpy(a)


def _numpy_view(a: Any) -> Any:
    """Return a zero-copy numpy view of a torch CPU tensor or numpy array."""
    import numpy as np

    if isinstance(a, np.ndarray):
        return a
    return a.detach().numpy()
