"""Settings for the whole suite, applied before any test module imports NumPy."""

from __future__ import annotations

import os

# One BLAS thread: the machines have 2 cores, shared with a server and a browser in the
# browser tests. `make test` sets this too; this covers a bare `pytest`.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from hypothesis import HealthCheck, settings  # noqa: E402

# No per-example deadline: timings on a shared 2-core machine vary too much for one,
# and a deadline failure says nothing about correctness.
settings.register_profile("convscope", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "convscope"))
