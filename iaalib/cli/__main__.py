"""``python -m iaalib.cli COMMAND ...`` (= ``iaa``); also the ``torchrun`` entry point:
``torchrun --nproc_per_node N -m iaalib.cli train --config CFG``."""
import sys

from . import main

sys.exit(main())
