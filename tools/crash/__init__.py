"""Crash sessions: a seeded nemesis against a real cluster under concurrent clients,
the recorded history checked for linearizability.

`python -m tools.crash` runs a session on one host (`session.py`, `nox -s crash`);
`python -m tools.crash.netfault` runs one with every server in its own network namespace
and the network faults made by the kernel (`netfault.py`, `nox -s netfault`).
"""

from ._report import CrashOptions, CrashResult, print_failed_run_files, report
from .session import SessionHooks, main, run_crash

__all__ = [
    "CrashOptions",
    "CrashResult",
    "SessionHooks",
    "main",
    "print_failed_run_files",
    "report",
    "run_crash",
]
