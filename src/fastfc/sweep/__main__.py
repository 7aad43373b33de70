"""``python -m fastfc.sweep`` (the same as ``fastfc sweep``)."""
import sys

from fastfc.sweep._cli import main

sys.exit(main())
