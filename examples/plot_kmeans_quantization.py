"""
Colour quantisation with KMeans, on numpy and on torch
======================================================

:class:`xplearn.cluster.KMeans` reduces a photograph that ships with
scikit-learn (``china.jpg``) to 16 colours, once on numpy and once on torch.
The random numbers of k-means++ are drawn on the host from the same seed on
every framework, so the two runs start from the same pixels and end with
the same palette and the same picture.
"""

# %%
# The image as a table of pixels
# -------------------------------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_sample_image

from xplearn.cluster import KMeans

china = load_sample_image("china.jpg").astype(np.float32) / 255
h, w, _ = china.shape
pixels = china.reshape(-1, 3)
sample = np.random.default_rng(0).choice(len(pixels), 5_000, replace=False)
print(f"{h} × {w} image, {len(pixels):,} pixels; fitting on {len(sample):,}")

# %%
# The same fit on numpy and on torch
# ----------------------------------
palettes, pictures = {}, {}
for name, data in {"numpy": pixels, "torch": torch.from_numpy(pixels)}.items():
    km = KMeans(n_clusters=16, n_init=1, random_state=0).fit(data[sample])
    labels = km.predict(data)  # numpy in, numpy out; torch in, torch out
    print(f"{name:5s}: labels are {type(labels).__module__}.{type(labels).__name__}")
    palettes[name] = np.asarray(km.cluster_centers_)
    pictures[name] = np.asarray(labels)

same_labels = (pictures["numpy"] == pictures["torch"]).mean()
gap = np.abs(palettes["numpy"] - palettes["torch"]).max()
print(f"labels equal on {same_labels:.2%} of the pixels; palettes differ by {gap:.1e}")

# %%
# Side by side
# ------------
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
axes[0].imshow(china)
axes[0].set_title(f"original ({len(np.unique(pixels, axis=0)):,} colours)")
for ax, name in zip(axes[1:], ["numpy", "torch"], strict=True):
    ax.imshow(palettes[name][pictures[name]].reshape(h, w, 3))
    ax.set_title(f"16 colours, KMeans on {name}")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
plt.show()
