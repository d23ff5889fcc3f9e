"""`python -m mio.cli ...` (also under torchrun) runs the `mio` command."""

import sys

from mio.cli import main

sys.exit(main())
