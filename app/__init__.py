"""convscope's web application and command line.

BLAS is pinned to one thread before NumPy loads: the server runs forward passes on a
worker pool and the engine splits convolutions over its own threads, so a second
level of BLAS threads would oversubscribe the cores (measured: 2-3x slower on
2 cores under load). Set OPENBLAS_NUM_THREADS yourself to override.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
