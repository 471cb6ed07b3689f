"""`python -m ptycho_torch.train ...` (what torchrun runs) is `ptycho-torch train ...`."""
from __future__ import annotations

import sys

from ptycho_torch.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
