"""diskv-journal: inspect, verify, dump and repair a diskv-trio journal directory.

Installed as the `diskv_journal` package behind the `diskv-journal` command; in a checkout
it is also `tools.diskv_journal`. Its modules import each other relatively, so both names
work. See `cli.py` for the commands and exit codes.
"""

from .cli import main

__all__ = ["main"]
