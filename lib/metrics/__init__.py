r"""Neural-collapse and separation metrics: exact, fast, streaming.

Features are rows: ``H`` of shape ``(N, p)`` (``N`` samples, feature dimension ``p``), labels ``y``
of shape ``(N,)`` with integer values in ``[0, K)``. With class means :math:`\bar{\boldsymbol h}_k`,
class sizes :math:`n_k` and the global (sample) mean :math:`\boldsymbol h_G`,

.. math::
    \boldsymbol\Sigma_W = \frac1N \sum_{i=1}^N (\boldsymbol h_i - \bar{\boldsymbol h}_{y_i})
    (\boldsymbol h_i - \bar{\boldsymbol h}_{y_i})^\top, \qquad
    \boldsymbol\Sigma_B = \frac1K \sum_{k=1}^K (\bar{\boldsymbol h}_k - \boldsymbol h_G)
    (\bar{\boldsymbol h}_k - \boldsymbol h_G)^\top .

:func:`nc1` and :func:`trace_ratio` never build a ``p x p`` matrix: :math:`\boldsymbol\Sigma_B` has
rank at most :math:`K-1`, so :math:`\operatorname{tr}(\boldsymbol\Sigma_W\boldsymbol\Sigma_B^\dagger)`
is evaluated inside the span of the centred class means in :math:`O(NpK)` time and :math:`O(pK)`
memory, always accumulating in float64 (float32 on MPS, which has no float64). The same two passes
(class sums, then projected within-class scatter) power :class:`CollapseAccumulator`, so a data set
that does not fit in memory gives the same numbers as the in-memory functions.

The dense ``p x p`` matrices are still available (:func:`within_class_covariance`,
:func:`between_class_covariance`) for small ``p`` and for plots of spectra.

**Half precision.** Every function takes float16 and bfloat16 features: they are converted
exactly to float64 (float32 on MPS), accumulated there, and the result is rounded once to the
features' dtype. What that means at the edges of float16's range (largest finite value 65504):

* an entry above 65504 cannot be stored in float16 at all: ``H.half()`` turns it into ``inf``
  before ``lib`` sees it, and the metrics refuse it ("features contain ... non-finite value(s)");
* sums never overflow: class sums and scatters far above 65504 are exact float64 sums;
* a *result* above 65504 reads ``inf`` once rounded back to float16 -- covariance entries
  (squares of the features: entries of size 300 already give 90000), a large :func:`trace_ratio`
  or :func:`nc1` -- and a result below about ``6e-8`` reads 0. In float16 an ``inf`` from
  :func:`trace_ratio` may therefore mean "above 65504" rather than "no separation"; pass
  ``H.float()`` to tell them apart. bfloat16 has float32's range (about ``3.4e38``).
"""

from lib.metrics._core import Variant
from lib.metrics.geometry import equiangularity, equinorm, nc2, nc3, nc4
from lib.metrics.streaming import CollapseAccumulator
from lib.metrics.variability import (
    between_class_covariance,
    class_means,
    nc1,
    trace_ratio,
    within_class_covariance,
)

__all__ = [
    "CollapseAccumulator",
    "Variant",
    "between_class_covariance",
    "class_means",
    "equiangularity",
    "equinorm",
    "nc1",
    "nc2",
    "nc3",
    "nc4",
    "trace_ratio",
    "within_class_covariance",
]
