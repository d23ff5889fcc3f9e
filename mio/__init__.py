"""Mio: an interactive digital human."""

import os

# One BLAS thread: the runtime already runs its stages in parallel, and OpenBLAS worker threads
# spin-wait between small matrix products (the face blendshapes), stealing CPU from the LLM and
# the rasteriser on a 2-core machine. Set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

from mio.core import log as _log  # noqa: E402,F401 - installs the handler of the `mio` loggers
