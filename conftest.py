"""Settings for the whole test run, applied before any test module imports torch.

Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``). The notebook
kernels that nbval starts inherit it. On a busy two-core machine spinning threads made small
tensor operations many times slower; the results are the same either way.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
