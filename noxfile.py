"""Developer sessions: tests, lint, bench, crash.

`nox -s tests` is the default suite (what CI runs); `nox -s crash` holds the long
fault-injection runs; `nox -s bench` prints figures and asserts nothing.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYTEST_ARGS = ["--strict-markers", "--strict-config", "--durations=10"]


def _install(session: nox.Session, *extras: str) -> None:
    spec = ".[" + ",".join(extras) + "]" if extras else "."
    session.install("-e", spec)


@nox.session
def tests(session: nox.Session) -> None:
    """The default test suite: unit, property, simulation and the ported course suites."""
    _install(session, "test")
    session.run("pytest", *PYTEST_ARGS, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (style, bugs, async rules) and mypy over the packages."""
    _install(session, "test", "lint")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Print performance figures beside baselines measured in the same run."""
    _install(session, "test")
    session.run("python", "-m", "tools.bench", *session.posargs)


@nox.session
def crash(session: nox.Session) -> None:
    """Seeded crash sessions checked for linearizability: `nox -s crash -- --seed S --minutes M`."""
    _install(session, "test")
    session.run("python", "-m", "tools.crash", *session.posargs)
