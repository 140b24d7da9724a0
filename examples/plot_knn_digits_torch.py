"""
KNN classification of digits on torch
=====================================

scikit-learn's handwritten digits (8 × 8 images) classified by
:class:`xplearn.neighbors.KNeighborsClassifier` on torch tensors: the data
never leave torch, the predictions are a torch tensor on the same device, and
the confusion matrix is computed in torch too. On a machine with a GPU, the
one line marked below moves everything there.
"""

# %%
# The data, as torch tensors
# --------------------------
import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import ConfusionMatrixDisplay

from xplearn.neighbors import KNeighborsClassifier

device = "cuda" if torch.cuda.is_available() else "cpu"  # the one line
X, y = load_digits(return_X_y=True)
X = torch.asarray(X, dtype=torch.float32, device=device)
y = torch.asarray(y, device=device)
perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
train, test = perm[:1400].to(device), perm[1400:].to(device)
print(f"{len(train)} training and {len(test)} test digits on {X.device}")

# %%
# Fit and predict
# ---------------
clf = KNeighborsClassifier(n_neighbors=3).fit(X[train], y[train])
pred = clf.predict(X[test])
print(type(pred).__name__, pred.dtype, pred.device)
print(f"accuracy {(pred == y[test]).float().mean():.4f}")

# %%
# The confusion matrix, counted in torch
# --------------------------------------
# Each (true, predicted) pair is one cell of a 10 × 10 table: a bincount of
# ``10 * true + predicted`` fills it without leaving the device.
cm = torch.bincount(10 * y[test] + pred, minlength=100).reshape(10, 10)
print(cm)

fig, ax = plt.subplots(figsize=(5, 4.5))
ConfusionMatrixDisplay(cm.cpu().numpy(), display_labels=range(10)).plot(
    ax=ax, colorbar=False
)
ax.set_title("3-NN on digits, computed in torch")
fig.tight_layout()
plt.show()

# %%
# The digits it got wrong
# -----------------------
wrong = test[pred != y[test]][:10]
print(
    f"{int((pred != y[test]).sum())} wrong; the first {len(wrong)}, true → predicted:"
)
fig, axes = plt.subplots(1, 10, figsize=(12, 1.6))
for ax in axes:
    ax.axis("off")
for ax, i in zip(axes, wrong.tolist(), strict=False):
    ax.imshow(X[i].reshape(8, 8).cpu(), cmap="gray_r")
    ax.set_title(f"{y[i]} → {clf.predict(X[i : i + 1])[0]}", fontsize=9)
plt.show()
