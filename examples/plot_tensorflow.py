"""
TensorFlow tensors in and out
=============================

TensorFlow does not implement the Array API, so xplearn bridges it: an eager
``tf.Tensor`` goes by DLPack to torch (or to numpy when torch is not
installed), xplearn computes there, and the answer comes back as a
``tf.Tensor``. This example finds the nearest neighbours of a few digits in
TensorFlow tensors, classifies and clusters them, and makes a function of
its own accept TensorFlow with :func:`xplearn.tensor_agnostic`.
"""

# %%
# Nearest neighbours of TensorFlow tensors
# ----------------------------------------
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

import xplearn
from xplearn.cluster import KMeans
from xplearn.neighbors import KNeighborsClassifier, kneighbors

X, y = load_digits(return_X_y=True)
Xtf = tf.constant(X, dtype=tf.float32)
ytf = tf.constant(y)
queries = Xtf[:6]
dist, ind = kneighbors(queries, Xtf, n_neighbors=6)
print(type(dist).__name__, dist.dtype, ind.dtype, ind.shape)
print("computed on:", xplearn.get_config()["tf_namespace"], "→ torch when installed")

# %%
# Each row: a query digit (it is its own nearest neighbour) and the five next.
fig, axes = plt.subplots(6, 6, figsize=(6, 6))
for r in range(6):
    for c in range(6):
        ax = axes[r, c]
        ax.imshow(tf.reshape(Xtf[ind[r, c]], (8, 8)), cmap="gray_r")
        ax.set_title(f"{float(dist[r, c]):.0f}", fontsize=7)
        ax.axis("off")
fig.suptitle("6-NN of TensorFlow tensors (Euclidean distance above)")
fig.tight_layout()
plt.show()

# %%
# Estimators: TensorFlow in, TensorFlow out
# -----------------------------------------
clf = KNeighborsClassifier(n_neighbors=5).fit(Xtf[:1500], ytf[:1500])
pred = clf.predict(Xtf[1500:])
accuracy = tf.reduce_mean(tf.cast(pred == ytf[1500:], tf.float32))
print(f"{type(pred).__name__} {pred.dtype.name}, accuracy {float(accuracy):.4f}")

km = KMeans(n_clusters=10, n_init=1, random_state=0).fit(Xtf)
labels = km.predict(Xtf)
print(type(labels).__name__, labels.dtype.name, labels[:12].numpy())
# The fitted state stays where the computation ran (torch here):
print("cluster_centers_ is a", type(km.cluster_centers_).__module__.split(".")[0])


# %%
# A function of your own
# ----------------------
# ``tensor_agnostic`` gives the function the namespace to compute with; the
# TensorFlow tensor reaches it as torch (zero-copy) and goes back as TF.
@xplearn.tensor_agnostic
def standardize(X, *, xp):
    return (X - xp.mean(X, axis=0)) / (xp.std(X, axis=0) + 1e-6)


Z = standardize(Xtf)
print(
    type(Z).__name__,
    Z.dtype.name,
    f"column means ~ {float(tf.reduce_max(tf.abs(tf.reduce_mean(Z, 0)))):.1e}",
)

# %%
# Inside ``tf.function`` tensors are symbolic and xplearn says what to do:
try:
    tf.function(lambda a: kneighbors(a, a, n_neighbors=2))(Xtf[:10])
except TypeError as exc:
    print(str(exc).strip().splitlines()[-1][:200])

np.testing.assert_array_equal(pred.numpy(), clf.predict(X[1500:].astype(np.float32)))
