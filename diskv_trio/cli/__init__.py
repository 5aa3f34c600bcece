"""The `diskv` command line: servers, client, admin, local cluster."""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
