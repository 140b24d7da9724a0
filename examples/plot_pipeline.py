"""
A torch model in a scikit-learn Pipeline with xplearn
=====================================================

Two pipelines over torch tensors, each ending in xplearn's
:class:`~xplearn.neighbors.KNeighborsClassifier`:

1. scikit-learn's ``PCA``, made to take and return tensors by
   :func:`xplearn.wrap`, followed by the classifier, tuned by ``GridSearchCV``;
2. a small torch network trained by skorch's ``NeuralNetClassifier``, whose
   hidden layer is the embedding, followed by a k-NN vote in that embedding.

The tensors go in as tensors and the predictions come out as tensors.
"""

# %%
# Digits as torch tensors
# -----------------------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from skorch import NeuralNetClassifier

import xplearn
from xplearn.neighbors import KNeighborsClassifier

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X = torch.asarray(X / 16, dtype=torch.float32)
y = torch.asarray(y)
perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
train, test = perm[:1400], perm[1400:]

# %%
# ``wrap(PCA)`` → ``KNeighborsClassifier`` in ``GridSearchCV``
# ------------------------------------------------------------
# ``wrap`` copies to the host for PCA (which needs numpy) and hands torch
# tensors back; the k-NN search then runs in torch.
pca_knn = Pipeline(
    [("pca", xplearn.wrap(PCA(random_state=0))), ("knn", KNeighborsClassifier())]
)
grid = GridSearchCV(
    pca_knn,
    {"pca__estimator__n_components": [8, 16, 32], "knn__n_neighbors": [1, 3, 5]},
    cv=3,
)
grid.fit(X[train], y[train])
print("best:", grid.best_params_, f"cross-validated accuracy {grid.best_score_:.4f}")
pred = grid.predict(X[test])
print(type(pred).__name__, f"test accuracy {(pred == y[test]).float().mean():.4f}")

# %%
# The grid's scores
scores = grid.cv_results_["mean_test_score"].reshape(3, 3)
fig, ax = plt.subplots(figsize=(4.5, 3.5))
image = ax.imshow(scores, cmap="viridis")
ax.set_xticks(range(3), [1, 3, 5])
ax.set_yticks(range(3), [8, 16, 32])
ax.set_xlabel("n_neighbors")
ax.set_ylabel("PCA components")
for (i, j), s in np.ndenumerate(scores):
    ax.text(j, i, f"{s:.3f}", ha="center", va="center", color="w", fontsize=9)
fig.colorbar(image)
ax.set_title("GridSearchCV over torch tensors")
fig.tight_layout()
plt.show()


# %%
# A skorch network's embedding, then k-NN
# ---------------------------------------
# The network classifies through a 16-dimensional hidden layer. skorch trains
# it; ``transform`` (added below) returns that layer, so the network is a
# scikit-learn transformer and xplearn's k-NN votes among the training
# digits nearest in the learnt embedding, in torch.
class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Sequential(
            torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16)
        )
        self.head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(16, 10))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(X))


class Embedding(NeuralNetClassifier):
    """skorch's classifier, with ``transform`` giving the hidden layer."""

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        self.module_.eval()
        with torch.no_grad():
            return self.module_.embed(torch.as_tensor(X, device=self.device))


net_knn = Pipeline(
    [
        (
            "net",
            Embedding(
                Net,
                criterion=torch.nn.CrossEntropyLoss,
                optimizer=torch.optim.Adam,
                lr=0.01,
                max_epochs=30,
                batch_size=64,
                train_split=None,
                verbose=0,
            ),
        ),
        ("knn", KNeighborsClassifier(n_neighbors=5)),
    ]
)
net_knn.fit(X[train], y[train])
pred = net_knn.predict(X[test])
print(type(pred).__name__, f"test accuracy {(pred == y[test]).float().mean():.4f}")

# %%
# The learnt embedding, drawn by its first two principal axes (a torch SVD).
Z = net_knn.named_steps["net"].transform(X[test])
Z = Z - Z.mean(0)
xy = Z @ torch.linalg.svd(Z, full_matrices=False).Vh[:2].T
fig, ax = plt.subplots(figsize=(5, 4.5))
points = ax.scatter(xy[:, 0], xy[:, 1], c=y[test], cmap="tab10", s=12)
ax.legend(*points.legend_elements(), title="digit", fontsize=7, loc="best")
ax.set_title("skorch embedding of the test digits")
fig.tight_layout()
plt.show()
