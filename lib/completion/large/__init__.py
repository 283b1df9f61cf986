r"""Deep matrix completion at large ``d``: the observed entries only, no ``d × d`` array anywhere.

Lecture section 4 at the size where the original network cannot be held in memory (at
``d = 100,000`` its ``L = 3`` weights are :math:`3\cdot 10^{10}` floats); every step here costs
:math:`O(|\Omega|\,\hat r + d\hat r^2)`. :func:`make_large_problem` holds the target as factors
(the distribution of :func:`lib.completion.make_problem`), the observed entries as sorted int64
``(rows, cols)`` and a held-out sample of unobserved ones; :func:`sparse_first_gradient` and
:func:`compress_large` build the compressed network of the original one started at
:math:`W_l(0) = \varepsilon I` from the observed entries (subspace iteration with sparse
products); :func:`fit_large` trains it with :mod:`lib.completion._engine`'s observed-entry step
to a relative test error on the held-out sample. :func:`to_dense` is for checks at small ``d``.
"""

from lib.completion.large.fit import LargeFitResult, fit_large
from lib.completion.large.network import compress_large, sparse_first_gradient
from lib.completion.large.problem import (
    CHUNK,
    DENSE_MAX_D,
    N_TEST,
    LargeProblem,
    make_large_problem,
    to_dense,
)

__all__ = [
    "CHUNK",
    "DENSE_MAX_D",
    "N_TEST",
    "LargeFitResult",
    "LargeProblem",
    "compress_large",
    "fit_large",
    "make_large_problem",
    "sparse_first_gradient",
    "to_dense",
]
