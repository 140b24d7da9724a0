"""Every install and every check of xplearn lives here.

    nox                      # lint, typecheck, tests per backend, tests_min,
                             # sklearn_suite, docs
    nox -s "tests(torch)"    # one backend
    nox -s docs              # the Sphinx site and its executed gallery, -W
    nox -s bench             # benchmarks against scikit-learn and FAISS (not a test)
    nox -s bench_tflite      # TFLite KNN latency against TensorFlow (not a test)
    nox -s tests_gpu         # on a machine with a CUDA GPU and network
    nox -s sklearn_suite     # scikit-learn's own neighbours and k-means tests

pip-based venvs (the ``venv`` backend): pip finds the local CPU torch wheel,
uv does not.  torch is pinned ``==2.13.0``: an unpinned torch makes pip pull
gigabytes of CUDA packages.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "tests_pretend_gpu",
    "tests_min",
    "sklearn_suite",
    "docs",
]

PYPROJECT = nox.project.load_toml("pyproject.toml")
TORCH = "torch==2.13.0"


def _groups(*names: str) -> list[str]:
    return [d for n in names for d in nox.project.dependency_groups(PYPROJECT, n)]


# What each backend session installs besides xplearn and the test group, and
# the --backends it runs (tensorflow also checks its zero-copy hand-off to torch,
# and runs the exported TFLite models on LiteRT, the maintained runtime).
LITERT = "ai-edge-litert"
BACKENDS: dict[str, tuple[list[str], str]] = {
    "numpy": ([], "numpy"),
    "array_api_strict": (["array-api-strict"], "array_api_strict"),
    # the bench group lets test_bench run `xplearn bench --quick`
    "torch": ([TORCH, *_groups("bench")], "torch"),
    "jax": (["jax"], "jax"),
    # dask and distributed from one extra: asked for apart, pip paired the newest
    # dask with a 2021 distributed that fails to import.
    "dask": (["dask[array,distributed]"], "dask"),
    "tensorflow": (["tensorflow-cpu", TORCH, LITERT], "tensorflow,torch"),
}

# The scikit-learn whose test files sklearn_suite/known_failures.txt was made
# from: another version has other tests, so the list would not match.
SKLEARN_SUITE = "scikit-learn==1.9.1"

# The oldest versions xplearn supports (pyproject's lower bounds).
MINIMUM = [
    "numpy==1.26.4",
    "array-api-compat==1.11",
    "array-api-extra==0.7.0",
    "scikit-learn==1.6.0",
    "scipy==1.14.1",  # scikit-learn 1.6's array API checks need it
    "pandas==2.2.2",
    TORCH,
]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff format --check and ruff check."""
    session.install(*_groups("lint"))
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src."""
    session.install(*_groups("typecheck"), TORCH, "-e", ".")
    session.run("mypy")


@nox.session
# ids give the short names the README uses: nox -s "tests(torch)".
@nox.parametrize("backend", list(BACKENDS), ids=list(BACKENDS))
def tests(session: nox.Session, backend: str) -> None:
    """The test suite on one backend (numpy is the reference everywhere)."""
    extra, requested = BACKENDS[backend]
    session.install(*_groups("test"), *extra, "-e", ".")
    session.run(
        "pytest",
        f"--backends={requested}",
        "--durations=5",
        *session.posargs,
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@nox.session
def tests_pretend_gpu(session: nox.Session) -> None:
    """The search, KMeans and fuzz tests on torch through the accelerator paths.

    ``--pretend-accelerator`` makes torch on the CPU take the code a GPU runs
    (device-sized tiles, scaled down; float64 re-ranking of every candidate;
    no host reads in the tile loop), so CI tests that logic without a GPU.
    """
    extra, _ = BACKENDS["torch"]
    session.install(*_groups("test"), *extra, "-e", ".")
    session.run(
        "pytest",
        "--backends=torch",
        "--pretend-accelerator",
        *(session.posargs or PRETEND_GPU_TESTS),
    )


# What --pretend-accelerator changes: the search, the selections, KMeans.
PRETEND_GPU_TESTS = [
    "tests/test_search.py",
    "tests/test_database.py",
    "tests/test_screen.py",
    "tests/test_neighbors.py",
    "tests/test_neighbors_estimators.py",
    "tests/test_cluster.py",
    "tests/test_metrics.py",
    "tests/test_primitives.py",
    "tests/test_fuzz.py",
]


@nox.session
def tests_min(session: nox.Session) -> None:
    """The suite with the oldest supported dependency versions."""
    session.install(*MINIMUM, "pytest>=8", "hypothesis>=6.100", "-e", ".")
    session.run("pip", "list", silent=False)
    # array-api-strict is left out: its releases that install beside
    # numpy 1.26 call numpy 2 APIs (np.asarray(copy=...)) on to_device.
    # scikit-learn 1.6 runs its array API estimator checks, which need SciPy's
    # array API mode switched on before import.
    session.run(
        "pytest",
        "--backends=numpy,torch",
        *session.posargs,
        env={"SCIPY_ARRAY_API": "1"},
    )


@nox.session
def sklearn_suite(session: nox.Session) -> None:
    """scikit-learn's neighbours and k-means test files against xplearn.

    sklearn_suite/run.py copies them from the installed scikit-learn with only
    the imports of what xplearn provides swapped, and passes when exactly the
    tests of sklearn_suite/known_failures.txt fail.  Extra arguments go to it
    (``-- --measure``, ``-- --write-list``, ``-- -- -k radius``).
    """
    session.install(*_groups("test"), SKLEARN_SUITE, "-e", ".")
    session.run("python", "sklearn_suite/run.py", *session.posargs)


@nox.session(default=False)
def tests_gpu(session: nox.Session) -> None:
    """The suite on a CUDA machine: torch (CUDA build) and cupy, plus numpy.

    Not run by CI (no GPU there).  Install a CUDA torch wheel yourself or let
    pip pick one: this session deliberately does not pin the CPU wheel.
    """
    session.install(*_groups("test"), "torch", "cupy-cuda12x", "-e", ".")
    session.run("pytest", "--backends=numpy,torch,cupy", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx site with its executed gallery, warnings as errors.

    The gallery runs torch, TensorFlow and skorch examples, so they are
    installed here (torch pinned to the CPU wheel, as everywhere).
    ``nox -s docs -- -E`` passes options on to sphinx-build.
    """
    session.install(*_groups("docs"), TORCH, "tensorflow-cpu", LITERT, "-e", ".")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        *session.posargs,
        "docs",
        "docs/_build/html",
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    session.run("python", "docs/_generate.py", "docs/_build/html")  # the figures


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks against scikit-learn, FAISS and fast-pytorch-kmeans.

    Writes benchmarks/results/.  torch is pinned in the same install so that
    fast-pytorch-kmeans's torch requirement resolves to the CPU wheel.
    """
    session.install(*_groups("bench", "test"), TORCH, "-e", ".")
    session.run("python", "benchmarks/run.py", *session.posargs)
    session.run("python", "benchmarks/kmeans.py", *session.posargs)


@nox.session(default=False)
def bench_tflite(session: nox.Session) -> None:
    """TFLite (LiteRT) KNN query latency against TensorFlow: benchmarks/results/."""
    # psutil: the harness records what else was busy.
    session.install(TORCH, "tensorflow-cpu", LITERT, "psutil", "-e", ".")
    session.run("python", "benchmarks/tflite.py", *session.posargs)
