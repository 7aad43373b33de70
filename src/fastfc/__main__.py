"""``python -m fastfc``: the same as the ``fastfc`` command."""
import sys

from fastfc.cli import main

sys.exit(main())
