"""`python -m diskv_journal` (installed) or `python -m tools.diskv_journal` (a checkout)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
