"""shopflow: a self-hosted, real-time recommendation engine for e-commerce.

Importing shopflow sets ``OPENBLAS_NUM_THREADS=1`` unless it is already set: implicit's ALS and the
per-request linear algebra run far slower with OpenBLAS's own thread pool (implicit warns about it;
measured here, an ALS fit on the demo shop took 154 s with the pool and 8.6 s without). Set the
variable yourself before importing shopflow to choose otherwise.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
