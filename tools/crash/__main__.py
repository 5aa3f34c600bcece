"""`python -m tools.crash`: one crash session (see `session.py` for its options)."""

import sys

from .session import main

if __name__ == "__main__":
    sys.exit(main())
