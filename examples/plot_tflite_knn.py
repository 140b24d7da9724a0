"""
KNN to TFLite: a fitted classifier on the edge
==============================================

A :class:`~xplearn.neighbors.KNeighborsClassifier` fitted with xplearn is
exported with :func:`xplearn.tensorflow.to_tflite` to a TFLite flatbuffer
(builtin operations only), the format that phones and microcontroller-class
devices run.  The TFLite model gives the same neighbours as TensorFlow, and
so the same predictions.  ``examples/tflite_knn.py`` is the same workflow as
a script, with float16 weights and a latency figure.
"""

import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up log

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from sklearn.datasets import make_blobs
from sklearn.model_selection import train_test_split

import xplearn.tensorflow as xtf
from xplearn.neighbors import KNeighborsClassifier

# %%
# Fit on make_blobs data (float32: the precision TFLite computes in).
X, y = make_blobs(n_samples=1000, centers=5, n_features=2, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    X.astype(np.float32), y, test_size=0.3, random_state=0
)
clf = KNeighborsClassifier(n_neighbors=3).fit(X_train, y_train)

# %%
# Export: a TF module (one signature per method) and a TFLite flatbuffer.
module = xtf.to_module(clf)
flatbuffer = xtf.to_tflite(clf)
try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # TensorFlow's own (deprecated) interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Interpreter = tf.lite.Interpreter
lite = Interpreter(model_content=flatbuffer)

tf_ind = module.kneighbors(tf.constant(X_test))["indices"].numpy()
lite_ind = lite.get_signature_runner("kneighbors")(X=X_test)["indices"]
labels = lite.get_signature_runner("predict")(X=X_test)["labels"]
print(f"TFLite model: {len(flatbuffer):,} bytes")
print("TF and TFLite neighbours identical:", bool(np.array_equal(tf_ind, lite_ind)))
print(f"TFLite accuracy: {np.mean(labels == y_test):.3f}")

# %%
# The TFLite model's answers over the plane: its decision regions, with the
# test points coloured by their true class.
xx, yy = np.meshgrid(
    np.linspace(X[:, 0].min() - 1, X[:, 0].max() + 1, 150, dtype=np.float32),
    np.linspace(X[:, 1].min() - 1, X[:, 1].max() + 1, 150, dtype=np.float32),
)
grid = np.c_[xx.ravel(), yy.ravel()]
regions = lite.get_signature_runner("predict")(X=grid)["labels"].reshape(xx.shape)
fig, ax = plt.subplots(figsize=(6, 5))
ax.contourf(xx, yy, regions, alpha=0.3, cmap="tab10", levels=np.arange(-0.5, 5))
ax.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap="tab10", s=12, vmax=9)
ax.set_title(f"k=3 KNN run by TFLite: accuracy {np.mean(labels == y_test):.3f}")
plt.show()
