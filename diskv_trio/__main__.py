"""`python -m diskv_trio` is the `diskv` command."""

import sys

from diskv_trio.cli import main

sys.exit(main())
