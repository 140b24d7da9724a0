"""KMeans on any backend, reproducible across frameworks.

Lloyd iterations written once against ``xp`` (``_lloyd``): the assignment
(E-step) is one GEMM of augmented operands and an argmin per cache-sized tile
of rows (numpy: a fused kernel on a host thread pool), the update (M-step) a
weighted segment sum (``_primitives.segment_sums``: torch ``index_add_``,
numpy a sparse scatter-add, else a one-hot product).  ``algorithm="elkan"``
gives the same labels while skipping, by triangle-inequality bounds, the
points that cannot change cluster.  Semantics follow scikit-learn's
``KMeans``: the data is centred on its mean, ``tol`` is scaled by the mean
feature variance, the loop stops on strict convergence (labels unchanged) or
on the centre shift, and a last E-step makes ``labels_`` match
``cluster_centers_``.  Empty clusters are moved to the points farthest from
their centres, never left at the origin.

Random numbers are drawn on the host with numpy from ``random_state`` and the
chosen indices moved to the device, so one seed gives one initialisation on
every backend.  This package imports scikit-learn; ``import xplearn`` does not
import this package.
"""

from ._init import kmeans_plusplus
from ._kmeans import KMeans, kmeans
from ._minibatch import MiniBatchKMeans

__all__ = ["KMeans", "MiniBatchKMeans", "kmeans", "kmeans_plusplus"]
