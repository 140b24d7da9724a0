"""Exact reduced-precision screening of the Euclidean k-NN search.

On CPUs with bfloat16 dot-product instructions (AVX512-BF16, AMX), torch's
bfloat16 matrix product runs about 4× faster than float32 (PERF-NOTES.md:
629–822 against 149–195 GF/s on this 2-core Zen 5).  The screen computes the
ranking values ``‖y‖² − 2 x·y`` of the centred data in bfloat16, keeps a few
more candidates than asked for, re-ranks them by their exact float32
distances (the same function as the float32 search), and then *proves* per
query that no other row can come closer or tie: with a rigorous bound on
the screen's error, every non-candidate's true distance exceeds the k-th
computed one.  Queries where the proof fails are screened again with eight
times the candidates (ties and near-ties at the k-th neighbour), and those
still without a proof are searched again by the float32 path.  The answers
(indices, ties to the lower index, distances) are therefore the float32
path's, bit for bit.

The bound, for ``x`` and ``y`` centred on the database mean and rounded to
float32 (``u = 2**-8``, bfloat16's unit roundoff; ``v = 2**-24``, float32's;
``K`` the product's inner dimension): inputs rounded to bfloat16 move
``−2 x·y`` by at most ``2(ρx + ρy + ρx·ρy)‖x‖‖y‖``, with ``ρx`` the query's
measured relative rounding ``‖x − bf16(x)‖/‖x‖`` and ``ρy`` the largest of
the database rows' (each at most ``u``; about ``0.4u`` on Gaussian data, so
this bound is about half the worst case ``(4u + 2u²)‖x‖‖y‖``: queries
without a certificate at 50 000 x 256, 34 candidates, went from 27 of 3 000
to none); ``‖y‖²`` rides in two bfloat16
columns (high and low part: ``u²‖y‖²``); the float32 accumulation adds at
most ``1.01·K·v`` times the sum of the terms' magnitudes; and the output is
rounded to bfloat16 (``u/(1−u)·|value|``).  Centring and the final
distances are float32 roundings, covered by ``v`` terms.  The product also
adds the query's computed ``‖x‖²`` (two bfloat16 columns, ``u²‖x‖²``), so
its values are approximate squared distances, which the selection orders
as int16 keys (:func:`_candidates`); ``‖x‖²`` comes off again in float64
before the certificate.  See
:func:`xplearn.neighbors._search.certified`.

numpy float32 input takes the same path through a zero-copy torch view when
torch is installed.  ``config_context(screening="off")`` turns it off; the
results do not change, only the time.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from types import ModuleType
from typing import Any

from xplearn._config import get_config
from xplearn._namespace import device_of, namespace_name

# Candidates kept per query beyond k: enough that the certificate holds for
# all but a few queries on Gaussian data (PERF-NOTES: 34 at k = 10).
_EXTRA = 24
# Below this many multiply-adds the screen's fixed costs outweigh its gain.
_MIN_WORK = 2**28
# With the bfloat16 rows kept between searches (a fitted estimator's), torch
# searches are screened from this many multiply-adds on (screen_applies).
_MIN_KEPT_WORK = 2**26
# Database rows per candidate below which the group selection does not run:
# the selection then costs what the float32 path's does and the screen gains
# little.
_MIN_ROWS_PER_CANDIDATE = 1024
# Past this fraction of queries without a certificate the screen stops and
# the float32 search takes the rest (a screen and a redo cost more than one).
_MAX_FAILED = 0.1
# Queries without a certificate are screened again with this many times the
# candidates before the float32 search takes them.
_WIDE = 8
# Elements per bfloat16 product tile (128 MiB): oneDNN's bfloat16 GEMM runs
# 280 GF/s on 167 x 99 840 tiles and 700 on 1 024 x 99 840 here; 100 000 x 64
# searches took 0.85 s against 0.92-0.95 with the float32 search's 2**24.
_TILE_ELEMENTS = 2**26
# Query rows per tile are a multiple of this where there are more: oneDNN's
# bfloat16 GEMM ran 332 GF/s on 1 342 x 260 x 49 920 and 362-380 on 1 280 and
# 1 024 rows (2-core Zen 4, medians of 5); searches of 10 000 queries took
# 0.95-1.06 s against 1.06-1.14 (100 000 x 64) and 1.18-1.28 against
# 1.28-1.42 (50 000 x 256) on torch, interleaved.
_ROW_BLOCK = 64
# The group selection's group size (the float32 search's is 256): the top-k
# over the chosen groups' values costs more than the group minima here;
# 10 000-query searches took 0.90-1.00 s against 0.95-1.19 (100 000 x 64)
# and 1.04-1.10 against 1.09-1.29 (50 000 x 256), interleaved (Zen 4).
_GROUP = 128
# Elements of the centred database per chunk while it is converted (1 MiB).
_DATABASE_CHUNK = 2**18
_U = 2.0**-8  # bfloat16 unit roundoff (8 significant bits)
_V = 2.0**-24  # float32 unit roundoff

_FAST: dict[str, bool] = {}
# torch's private probes of the CPU's bfloat16 dot-product instructions.
_BF16_PROBES = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
_LOCK = threading.Lock()


def bf16_is_fast() -> bool:
    """Whether bfloat16 products are at least twice float32's on this CPU.

    Read from the CPU's instruction sets where torch reports them
    (AVX512-BF16 or AMX: oneDNN's bfloat16 kernels run 3–4× float32's;
    without them bfloat16 is emulated, slower than float32).  Where torch
    cannot say, measured once per process (about 20 ms); a timing taken
    under load could then decide either way, so the instruction sets come
    first and make the choice the same on every run.
    """
    with _LOCK:
        if "cpu" not in _FAST:
            known = _instructions()
            _FAST["cpu"] = _measure() if known is None else known
        return _FAST["cpu"]


def _instructions() -> bool | None:
    """Whether the CPU has bfloat16 dot products, or None where torch cannot say."""
    import torch

    cpu = getattr(torch, "cpu", None)
    probes = [getattr(cpu, n, None) for n in _BF16_PROBES]
    if not all(callable(p) for p in probes):
        return None
    try:
        return any(bool(p()) for p in probes if callable(p))
    except RuntimeError:
        return None


def _measure() -> bool:
    import time

    import torch

    gen = torch.Generator().manual_seed(0)
    A = torch.randn((256, 64), generator=gen)
    B = torch.randn((8192, 64), generator=gen)
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = A.to(dtype), B.to(dtype)
        out = torch.empty((256, 8192), dtype=dtype)
        torch.mm(a, b.T, out=out)  # warm up
        times = []
        for _ in range(3):
            t = time.perf_counter()
            torch.mm(a, b.T, out=out)
            times.append(time.perf_counter() - t)
        best[dtype] = min(times)
    return best[torch.bfloat16] * 2.0 <= best[torch.float32]


def host_float32(X: Any, xp: ModuleType) -> bool:
    """Whether ``X`` is float32 on the host where torch can view it.

    torch CPU tensors, and numpy arrays when torch is installed (zero-copy
    views): where the bfloat16 screens (k-NN and KMeans) can run.
    """
    name = namespace_name(xp)
    if name == "numpy":
        if importlib.util.find_spec("torch") is None:
            return False
    elif name != "torch" or str(device_of(X)) != "cpu":
        # TODO(#10): tensor cores on GPU, measured there first.
        return False
    return str(X.dtype).rpartition(".")[2] == "float32"


def screen_applies(X: Any, Y: Any, k: int, xp: ModuleType, kept: bool = False) -> bool:
    """Whether :func:`screened_search` should run for this search.

    ``kept``: the search of a fitted database whose bfloat16 rows are kept
    (or due to be: :meth:`xplearn.neighbors._search.Database.screens`), so
    the screen's fixed cost is paid; then below ``_MIN_WORK`` too, from two
    queries on numpy and from ``_MIN_KEPT_WORK`` on torch.  One query takes
    the float32 path (a product with one row, cheaper than the screen's
    selection).  On numpy the float32 path of a few queries is slow (each
    host thread reads the whole operand), and the screen runs on torch's
    views (:func:`xplearn.neighbors._search._torch_applies`).  With kept
    rows, medians of 5 interleaved (k = 10, ms, float32 path -> screen):

    ============  ====================  ======================
    queries       100 000 x 64          50 000 x 256
    ============  ====================  ======================
    numpy 2       3.30 -> 2.86          5.72 -> 3.63
    numpy 10      9.58 -> 3.32          14.8 -> 4.00
    torch 4       2.38 (2.96)           4.13 (3.56)
    torch 10      3.07 (3.19)           6.83 -> 3.73
    torch 20      5.48 -> 3.36          8.13 -> 4.69
    ============  ====================  ======================

    (Below 2²⁶ multiply-adds torch keeps the float32 path: the screen's
    figures in brackets, where it gains little or loses.)
    """
    if get_config()["screening"] == "off" or not host_float32(X, xp):
        return False
    n, d = X.shape
    m = Y.shape[0]
    work = n * m * d
    if kept:
        numpy = namespace_name(xp) == "numpy"
        enough = n >= 2 and (numpy or work >= _MIN_KEPT_WORK)
    else:
        enough = work >= _MIN_WORK
    return enough and m >= _MIN_ROWS_PER_CANDIDATE * (k + _EXTRA) and bf16_is_fast()


def screened_search(
    X: Any, Y: Any, k: int, xp: ModuleType, fallback: Any, kept: Any = None
) -> tuple[Any, Any]:
    """Exact k nearest (squared distances, indices), screened in bfloat16.

    ``X`` and ``Y`` are float32 compute arrays of ``xp`` (torch on the CPU, or
    numpy: only the screen runs on zero-copy torch views, the exact
    re-ranking stays in numpy, so distances are numpy's to the last bit);
    ``fallback(X, Y, k, xp)`` is the float32 search, run on the queries the
    certificate does not cover.  ``kept``: a dict in which the centres and
    bfloat16 databases of ``Y`` are kept between searches (an estimator's,
    :class:`xplearn.neighbors._search.Database`), or None.

    With ``config_context(screening="all")`` each query is screened on data
    centred on the nearest of a few *pivots* (:func:`_pivots`: the database
    mean and a coarse k-means of a sample of the database) where that is
    much nearer than the mean: the bound grows with the query's centred
    norm, and on clustered data (classes, blobs) the global mean is far from
    every query, so the screen certifies nothing there.  The pivot changes
    what is certified, never an answer.  Opt-in: on the classifier
    benchmark's data (32 features) the certified bfloat16 search was not
    shown faster than the float32 one it replaces; by default the database
    mean is the only centre.
    """
    import array_api_compat.torch as torch_xp
    import torch

    from xplearn._convert import to_namespace

    from ._search import host_workers

    def view(a: Any) -> Any:
        return to_namespace(a, torch_xp)

    (n, d), m = X.shape, Y.shape[0]
    n_cand = min(m, k + _EXTRA)
    n_wide = min(m, _WIDE * n_cand)
    Yt = view(Y)
    with torch.no_grad():
        pivots, databases = _kept_pivots(Yt, kept)
        centres, order, sizes = _pivot_groups(view(X), pivots)
    rows, cols = _tile_plan(n, m, n_cand, d)
    # The product's buffer, and the host threads that share the re-ranking.
    scratch = (
        torch.empty((rows * cols,), dtype=torch.bfloat16),
        host_workers(xp, rows),
    )
    out_v: list[Any] = []
    out_i: list[Any] = []
    redo: list[Any] = []
    fixed: list[tuple[Any, Any, Any]] = []
    failed, done, start = 0, 0, 0
    gave_up = False

    def screen(pos: Any, YaT: Any, c: Any, yy: tuple[float, float], width: int) -> Any:
        return _screen_rows(
            X, Y, to_namespace(pos, xp), (YaT, c, *yy), k, width, (cols, scratch), xp
        )

    for g, size in enumerate(sizes):
        if not size or gave_up:
            start += size
            continue
        YaT, *norms = _centre_database(databases, g, Yt, centres[g])
        yy = (norms[0], norms[1])
        c = to_namespace(centres[g], xp)
        retry = []
        for i in range(start, start + size, rows):
            pos = order[i : min(i + rows, start + size)]
            vals, idx, ok = screen(pos, YaT, c, yy, n_cand)
            out_v.append(vals)
            out_i.append(idx)
            if ok is not None and not bool(xp.all(ok)):
                retry.append(i + xp.nonzero(~ok)[0])
                failed += int(retry[-1].shape[0])
            done += int(pos.shape[0])
            if rows <= done < n and failed > _MAX_FAILED * done:
                # The bound is too loose for this data (distances far below
                # the norms even from the nearest pivot): float32 for the rest.
                rest = to_namespace(order[done:], xp)
                fv, fi = fallback(xp.take(X, rest, axis=0), Y, k, xp)
                out_v.append(fv)
                out_i.append(fi)
                redo.extend(retry)
                gave_up = True
                break
        if retry and not gave_up:
            # A few queries' k-th neighbour sits among many near-equal rows:
            # a wider screen (against the same bfloat16 database) certifies
            # most, where the float32 search would rebuild its operands for
            # them (0.13 s for 4 queries at 50 000 x 256).
            wide = functools.partial(screen, YaT=YaT, c=c, yy=yy, width=n_wide)
            redo.extend(_screen_again(xp.concat(retry), order, rows, wide, fixed, xp))
        start += size
    return _finish(out_v, out_i, fixed, redo, order, X, Y, k, xp, fallback)


def _tile_plan(n: int, m: int, n_cand: int, d: int) -> tuple[int, int]:
    """Rows and columns of the bfloat16 product's tiles.

    The float32 search's CPU tile plan with the screen's larger tiles, the
    rows a multiple of ``_ROW_BLOCK`` where there are more (one tile of
    every query stays one).
    """
    import array_api_compat.torch as torch_xp
    import torch

    from xplearn._primitives import working_memory_bytes

    from ._search import euclidean_tiles

    budget = working_memory_bytes(torch_xp, torch.device("cpu"))
    rows, cols = euclidean_tiles(n, m, n_cand, d, 2, budget, False, _TILE_ELEMENTS)
    if _ROW_BLOCK < rows < n:
        rows -= rows % _ROW_BLOCK
    return rows, cols


def _screen_rows(
    X: Any,
    Y: Any,
    pos: Any,
    database: tuple[Any, Any, float, float],
    k: int,
    width: int,
    plan: tuple[int, tuple[Any, int]],
    xp: ModuleType,
) -> tuple[Any, Any, Any]:
    """Screen the queries ``X[pos]``: the ``k`` best, and their certificates.

    The ``k`` best of ``width`` candidates, re-ranked; the certificates are
    None where every row is a candidate.

    ``database`` is ``(YaT, c, yy_max, rho_y)``: :func:`_database`'s and its
    centre; ``plan`` is the tile width and ``(bfloat16 buffer, host workers)``.
    """
    import array_api_compat.torch as torch_xp
    import torch

    from xplearn._convert import to_namespace

    from ._search import certified, on_host_threads, rerank

    YaT, c, yy_max, rho_y = database
    cols, (buf, workers) = plan
    m, d = Y.shape
    Xq = xp.take(X, pos, axis=0)
    Xc = Xq - c
    xx = xp.sum(Xc * Xc, axis=1)
    with torch.no_grad():
        tau, cand, rho_x = _candidates(
            to_namespace(Xc, torch_xp),
            to_namespace(xx, torch_xp),
            YaT,
            width,
            cols,
            buf,
        )
    cand, tau = to_namespace(cand, xp), to_namespace(tau, xp)
    rho_x = to_namespace(rho_x, xp)

    def part(lo: int, hi: int) -> tuple[Any, Any, Any]:
        # numpy's gathers and sums are single-threaded: the rows are shared
        # among the host workers, as the float32 search's tiles are.
        # Every candidate re-ranked (not rerank_nearest's shortcut: with
        # k + 12 of 34 first, 2% of the queries at 50 000 x 256 needed all,
        # and 10 000-query searches were no faster).
        vals, idx = rerank(Xq[lo:hi], Y, cand[lo:hi], k, xp)
        if width >= m:
            return vals, idx, None
        err = _bf16_error(d, YaT.shape[0], rho_x[lo:hi], rho_y)
        ok = certified(
            vals[:, -1], tau[lo:hi], xx[lo:hi], yy_max, d, err, xp, local=True
        )
        return vals, idx, ok

    parts = on_host_threads(part, int(pos.shape[0]), workers)
    if len(parts) == 1:
        only: tuple[Any, Any, Any] = parts[0]
        return only
    vals, idx, ok = zip(*parts, strict=True)
    joined = xp.concat(list(ok), axis=0) if ok[0] is not None else None
    return xp.concat(list(vals), axis=0), xp.concat(list(idx), axis=0), joined


def _screen_again(
    at: Any, order: Any, rows: int, wide: Any, fixed: list[Any], xp: ModuleType
) -> list[Any]:
    """Screen the joined-tile rows ``at`` again by ``wide``, ``rows`` at a time.

    Their answers go to ``fixed``; returns the rows still without a
    certificate.
    """
    import array_api_compat.torch as torch_xp

    from xplearn._convert import to_namespace

    still = []
    for j in range(0, int(at.shape[0]), rows):
        part = at[j : j + rows]
        vals, idx, ok = wide(order[to_namespace(part, torch_xp)])
        fixed.append((part, vals, idx))
        if ok is not None and not bool(xp.all(ok)):
            still.append(xp.take(part, xp.nonzero(~ok)[0], axis=0))
    return still


def _finish(
    out_v: list[Any],
    out_i: list[Any],
    fixed: list[tuple[Any, Any, Any]],
    redo: list[Any],
    order: Any,
    X: Any,
    Y: Any,
    k: int,
    xp: ModuleType,
    fallback: Any,
) -> tuple[Any, Any]:
    """Join the tiles, put in the wider screen's and the redone rows, undo the order.

    Row ``r`` of the joined tiles answers query ``order[r]``; ``fixed`` holds
    (row positions, distances, indices) from the wider screen and ``redo``
    the row positions still without a certificate.
    """
    import torch

    from xplearn._convert import to_namespace

    dist = out_v[0] if len(out_v) == 1 else xp.concat(out_v)
    ind = out_i[0] if len(out_i) == 1 else xp.concat(out_i)
    for rows_x, fv, fi in fixed:
        dist[rows_x] = fv  # numpy and torch: our own new arrays
        ind[rows_x] = fi
    if redo:
        rows_x = xp.concat(redo)
        orig = xp.take(to_namespace(order, xp), rows_x, axis=0)
        fv, fi = fallback(xp.take(X, orig, axis=0), Y, k, xp)
        dist[rows_x] = fv
        ind[rows_x] = fi
    inverse = to_namespace(torch.argsort(order), xp)
    return xp.take(dist, inverse, axis=0), xp.take(ind, inverse, axis=0)


def _kept_pivots(Y: Any, kept: dict[bool, Any] | None) -> tuple[Any, dict[int, Any]]:
    """:func:`_pivots` of ``Y`` and, by centre, its bfloat16 databases.

    Both are taken from ``kept`` (a dict by the ``screening`` mode), where
    they are put the first time, when it is not None; the databases
    (:func:`_database`) are added by the screen as it builds them.
    """
    every = get_config()["screening"] == "all"
    if kept is None:
        return _pivots(Y, every), {}
    if every not in kept:
        kept[every] = (_pivots(Y, every), {})
    pivots, databases = kept[every]
    return pivots, databases


def _centre_database(
    databases: dict[int, Any], g: int, Y: Any, centre: Any
) -> tuple[Any, float, float]:
    """:func:`_database` of ``Y`` centred on ``centre``, kept as ``databases[g]``."""
    import torch

    if g not in databases:
        with torch.no_grad():
            databases[g] = _database(Y, centre)
    found: tuple[Any, float, float] = databases[g]
    return found


def _pivot_groups(X: Any, centres: Any) -> tuple[Any, Any, list[int]]:
    """Centres, the queries ordered by centre, and the number per centre.

    ``centres``: :func:`_pivots` of the database.  torch CPU float32 views
    in and out.  The mean's queries come last: on clustered data they are
    the few between clusters, which fail the bound, and the screen's early
    give-up should not judge it by them.
    """
    import torch

    choice = _choose_pivots(X, centres)
    choice = torch.where(choice == 0, centres.shape[0], choice) - 1
    order = torch.argsort(choice, stable=True)
    sizes = torch.bincount(choice, minlength=centres.shape[0]).tolist()
    return torch.roll(centres, -1, dims=0), order, sizes


# Pivots besides the database mean, and the sample they are fitted on.
_N_PIVOTS = 16
_PIVOT_SAMPLE = 4096
_PIVOT_ITERATIONS = 8
# A pivot replaces the mean for a query only where it is this much nearer (in
# squared distance), and only for pivots that this many queries take: each
# pivot used costs a pass over the database (centring it in bfloat16), about
# the price of screening a few dozen queries.
_PIVOT_GAIN = 0.5
_MIN_PIVOT_QUERIES = 64


def _pivots(Y: Any, pivots: bool = True) -> Any:
    """Return candidate centres for the screen: the mean, then coarse k-means centres.

    Only the mean where ``pivots`` is false.

    A few Lloyd iterations on an evenly strided sample of the database rows
    (torch float32, milliseconds): on clustered data they land near the
    clusters, where the queries are.  Any centres give exact answers; these
    only make the certificate hold more often.
    """
    import torch

    m = Y.shape[0]
    mean = torch.mean(Y, dim=0, keepdim=True)
    step = max(1, m // _PIVOT_SAMPLE)
    S = Y[::step][:_PIVOT_SAMPLE]
    p = min(_N_PIVOTS if pivots else 0, S.shape[0])
    if p == 0:
        return mean
    C = S[torch.linspace(0, S.shape[0] - 1, p).long()].clone()
    ss = torch.einsum("ij,ij->i", S, S)
    for _ in range(_PIVOT_ITERATIONS):
        D = torch.einsum("ij,ij->i", C, C)[None, :] - 2.0 * (S @ C.T)
        labels = torch.argmin(D + ss[:, None], dim=1)
        sums = torch.zeros_like(C).index_add_(0, labels, S)
        counts = torch.bincount(labels, minlength=p)
        nonempty = counts > 0
        C[nonempty] = sums[nonempty] / counts[nonempty, None].to(C.dtype)
    centres = torch.cat([mean, C], dim=0)
    return centres[torch.isfinite(centres).all(dim=1)]


def _choose_pivots(X: Any, centres: Any) -> Any:
    """Index of each query's centre: 0 (the mean) unless a pivot is much nearer."""
    import torch

    xx = torch.einsum("ij,ij->i", X, X)[:, None]
    cc = torch.einsum("ij,ij->i", centres, centres)[None, :]
    D = torch.clamp(xx + cc - 2.0 * (X @ centres.T), min=0.0)
    best = torch.argmin(D[:, 1:], dim=1) + 1 if centres.shape[0] > 1 else None
    if best is None:
        return torch.zeros((X.shape[0],), dtype=torch.int64)
    gain = torch.gather(D, 1, best[:, None])[:, 0] < _PIVOT_GAIN * D[:, 0]
    choice = torch.where(gain, best, torch.zeros_like(best))
    few = torch.bincount(choice, minlength=centres.shape[0]) < _MIN_PIVOT_QUERIES
    few[0] = False
    return torch.where(few[choice], torch.zeros_like(choice), choice)


def _database(Y: Any, c: Any) -> tuple[Any, float, float]:
    """``[Yᶜ, ‖yᶜ‖²_hi, ‖yᶜ‖²_lo, 1, 1]ᵀ`` in bfloat16 (``Yᶜ = Y − c``), max ‖yᶜ‖².

    And the largest relative rounding of a row, ``max ‖yᶜ − bf16(yᶜ)‖/‖yᶜ‖``
    (:func:`rounding_ratio`).

    The inner dimension is the features, then ``‖y‖²`` as a high and a low
    bfloat16 part (one part alone would be off by ``u·‖y‖²``), then two ones
    that take the query's ``‖x‖²`` (see :func:`_candidates`), padded to even
    for the kernels.  Stored as it is read, inner dimension × rows
    (C-contiguous), not as the transposed view of the rows: oneDNN's
    bfloat16 GEMM ran 648 against 344 GF/s on 640 x 68 x 99 840 tiles and
    1 777 against 795 at 260 inner (2-core Xeon with AMX; float32 showed no
    such difference), and 10 000-query searches took 0.76 against 0.93 s at
    100 000 x 64 and 0.59 against 0.73 at 50 000 x 256 (medians of 5,
    interleaved, same answers).
    """
    import torch

    m, d = Y.shape
    YaT = torch.empty((d + 4 + d % 2, m), dtype=torch.bfloat16)
    YaT[d + 2 : d + 4] = 1.0
    YaT[d + 4 :] = 0.0  # (the pad row)
    yy_max = rho = 0.0
    # A chunk of rows at a time: an m x d float32 temporary cost page faults
    # on this host (a third of this function's time at 50 000 x 256).
    step = max(1, _DATABASE_CHUNK // max(1, d))
    for j in range(0, m, step):
        Yc = Y[j : j + step] - c
        yy = torch.einsum("ij,ij->i", Yc, Yc)
        Yb = Yc.to(torch.bfloat16)
        YaT[:d, j : j + step] = Yb.T
        YaT[d : d + 2, j : j + step] = _hi_lo(yy).T
        yy_max = max(yy_max, float(yy.max()))
        rho = max(rho, float(rounding_ratio(Yc, yy, Yb).max()))
    return YaT, yy_max, rho


def rounding_ratio(V: Any, vv: Any, Vb: Any) -> Any:
    """Per row, an upper bound of ``‖v − bf16(v)‖ / ‖v‖`` (float64, at most ``u``).

    ``V`` is float32, ``vv`` its computed squared row norms and ``Vb`` its
    bfloat16 rounding.  Rounding to nearest moves each entry by at most
    ``u`` of itself, so ``u`` bounds the ratio; the actual ratio, measured,
    is 0.35–0.45 ``u`` on Gaussian rows, and the screen's bound (which is
    mostly ``‖δx‖·‖y‖ + ‖x‖·‖δy‖``) tightens with it.  The difference
    ``v − bf16(v)`` is exact in float32; both sums of squares are off by at
    most ``γ_d`` of themselves and ``d·2⁻¹²⁶`` (squares below the normal
    range).  Rows whose norms that could swallow, or whose squares
    overflow, get ``u``.
    """
    import torch

    d = V.shape[1]
    g = 1.01 * (d + 1) * _V
    delta = V - Vb.float()
    dd = torch.einsum("ij,ij->i", delta, delta).double()
    vv = vv.double()
    # Squares below float32's normal range may be flushed or rounded
    # absolutely: at most d·2⁻¹²⁶ in all.
    tiny = d * 2.0**-126
    low = vv * (1 - g) - tiny
    ratio = torch.sqrt((dd * (1 + g) + tiny) / torch.clamp(low, min=2.0**-1000))
    # Norms lost in that, or overflowing in the squares: u.
    odd = (low <= 0) | ~torch.isfinite(vv) | ~torch.isfinite(dd)
    ratio = torch.where(odd, _U, ratio * (1 + 2.0**-40))
    return torch.clamp(ratio, max=_U)


def _hi_lo(v: Any) -> Any:
    """float32 ``v`` as two bfloat16 columns, high and low (``v − hi`` is exact)."""
    import torch

    hi = v.to(torch.bfloat16)
    return torch.stack([hi, (v - hi.float()).to(torch.bfloat16)], dim=1)


def _candidates(
    Xc: Any, xx: Any, YaT: Any, n_cand: int, cols: int, buf: Any
) -> tuple[Any, Any, Any]:
    """Screened candidates of centred queries: (largest value kept, columns, ρ).

    The screen computes ``‖x‖² + ‖y‖² − 2 x·y`` (``xx`` is the computed
    ``‖x‖²``, in two bfloat16 columns): an approximate squared distance,
    never below minus its rounding, so the bfloat16 values' bits read as
    int16 order them as the values do except among negative values, whose
    order is reversed.  The float32 search's selection
    (:func:`xplearn.neighbors._search.screen_candidates`) runs on those
    int16 keys: a min-reduction over int16 runs 4x faster than over bfloat16
    (0.8 against 3.1 ms for 167 x 99 840), a top-k 1.4x.

    Returns, per query, the largest value kept *less* ``xx`` (float64: the
    screen's ``‖y‖² − 2 x·y``, see :func:`_bf16_error`), the columns (every
    column left out has a screened value at least the one returned), and
    the query's relative rounding to bfloat16 (:func:`rounding_ratio`).
    Where every kept value is negative (more near-duplicates than
    candidates), a negative left out may be smaller than all of them: that
    query's value is ``−inf``, and it gets no certificate.
    """
    import array_api_compat.torch as xp
    import torch

    from ._search import column_bounds, screen_candidates

    r, d = Xc.shape
    xa = torch.empty((r, YaT.shape[0]), dtype=torch.bfloat16)
    xa[:, :d] = Xc
    rho_x = rounding_ratio(Xc, xx, xa[:, :d])
    xa[:, :d] *= -2.0  # (exact)
    xa[:, d : d + 2] = 1.0  # × ‖y‖²'s two parts
    xa[:, d + 2 : d + 4] = _hi_lo(xx)  # × 1
    xa[:, d + 4 :] = 0.0  # (the pad row)
    keys, idx = screen_candidates(
        xa,
        YaT,
        n_cand,
        column_bounds(YaT.shape[1], cols, n_cand),
        buf,
        xp,
        key=lambda D: D.view(torch.int16),
        group=_GROUP,
    )
    top = keys.amax(dim=1)
    tau = top[:, None].view(torch.bfloat16)[:, 0].double() - xx.double()
    return torch.where(top < 0, -torch.inf, tau), idx, rho_x


def _bf16_error(d: int, K: int, rho_x: Any = _U, rho_y: float = _U) -> Any:
    """Return the bfloat16 screen's error bound (the module docstring derives it).

    ``rho_x`` (per query) and ``rho_y`` bound the relative rounding of the
    queries and of the database rows to bfloat16 (:func:`rounding_ratio`;
    at most ``u``): the inputs' rounding moves ``−2 x·y`` by at most
    ``2(ρx + ρy + ρx·ρy)·‖x‖‖y‖``.
    """
    from ._search import ScreenError

    value = _U / (1.0 - _U) + 2.0**-52  # to bfloat16, then − xx in float64
    return ScreenError(
        xy=2.0 * (rho_x + rho_y + rho_x * rho_y) + 1.01 * K * _V * 2.02,
        yy=(_U * _U + 1.01 * d * _V) * 1.01 + 1.01 * K * _V * 1.01,
        # xx in two parts (u²), summed (K·v), and in |value| = |σ + xx|
        x2=_U * _U * 1.01 + 1.01 * K * _V * 1.01 + value,
        value=value,
        floor=K * 2.0**-125,  # subnormal products flushed to zero
    )
