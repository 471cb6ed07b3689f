"""`python -m ptycho_torch ...` is `ptycho-torch ...`."""
from __future__ import annotations

import sys

from ptycho_torch.cli import main

sys.exit(main())
