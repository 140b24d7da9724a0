"""
Benchmarks: exact k-NN against FAISS and scikit-learn
=====================================================

The committed results of the benchmark suite (``benchmarks/results/`` of the
repository), read from their Markdown tables and plotted: exact k-NN
throughput, ``KNeighborsClassifier`` fit + predict, and KMeans to
convergence. Nothing is timed here; ``xplearn bench`` (or ``nox -s bench``)
measures again on your machine. :doc:`/performance` has the full tables and
how they were measured.
"""

# %%
# Reading the tables
# ------------------
from pathlib import Path

import matplotlib.pyplot as plt


def results_folder() -> Path:
    """benchmarks/results of the repository this example is part of."""
    here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "benchmarks" / "results").is_dir():
            return folder / "benchmarks" / "results"
    raise FileNotFoundError("run this example from a clone of the xplearn repository")


def tables(path: Path) -> list[list[dict[str, str]]]:
    """Every Markdown table of a file, as lists of {column: cell}."""
    found, rows, header = [], [], None
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
            elif not set(cells[0]) <= set("-: "):
                rows.append(dict(zip(header, cells, strict=True)))
        elif header is not None:
            found.append(rows)
            rows, header = [], None
    return found


results = results_folder()
knn = tables(results / "kneighbors.md")[0]
classifier = tables(results / "knn_classifier.md")[0]
kmeans = tables(results / "kmeans.md")
for row in knn:
    print(f"{row['database']:15s} {row['contender']:20s} {row['seconds (median)']} s")

# %%
# The plots
# ---------
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))

ax = axes[0]
shapes = list(dict.fromkeys(r["database"] for r in knn))
names = list(dict.fromkeys(r["contender"] for r in knn))
width = 0.8 / len(names)
for i, name in enumerate(names):
    qps = [
        float(
            next(r for r in knn if r["database"] == s and r["contender"] == name)[
                "queries/s"
            ].replace(",", "")
        )
        for s in shapes
    ]
    ax.bar([j + i * width for j in range(len(shapes))], qps, width, label=name)
ax.set_xticks([j + 0.4 - width / 2 for j in range(len(shapes))], shapes)
ax.set_ylabel("queries / s (higher is better)")
ax.set_title("exact k-NN, float32, k=10, 10,000 queries", fontsize=9)
ax.legend(fontsize=7)

ax = axes[1]
ax.barh(
    [r["contender"] for r in classifier],
    [float(r["seconds (median)"]) for r in classifier],
    color=["tab:blue", "tab:blue", "tab:gray"],
)
ax.invert_yaxis()
ax.set_xlabel("seconds (lower is better)")
ax.set_title("KNeighborsClassifier fit + predict, 50,000 × 32", fontsize=9)

ax = axes[2]
# (b): to convergence, well-separated blobs: the first table timed in seconds
converge = next(t for t in kmeans if "seconds (median)" in t[0])
ax.barh(
    [r["contender"] for r in converge],
    [float(r["seconds (median)"]) for r in converge],
    color=["tab:gray" if "scikit" in r["contender"] else "tab:blue" for r in converge],
)
ax.invert_yaxis()
ax.set_xlabel("seconds (lower is better)")
ax.set_title("KMeans to convergence, 200,000 × 32, k=64", fontsize=9)
for ax in axes:
    ax.tick_params(labelsize=7)
fig.suptitle("Committed results, 2-core CPU, 2 threads each (benchmarks/results)")
fig.tight_layout()
plt.show()
