"""Developer sessions: tests, lint, bench, crash, sim, netfault.

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
    """Print performance figures beside baselines measured in the same run.

    PySyncObj, the baseline of the kv write rate, is installed in this session only."""
    _install(session, "test")
    session.install("pysyncobj")
    session.run("python", "-m", "tools.bench", *session.posargs)


@nox.session
def crash(session: nox.Session) -> None:
    """Seeded crash sessions checked for linearizability: `nox -s crash -- --seed S --minutes M`
    (`-- --via resp`: the clients speak RESP through the gateway)."""
    _install(session, "test")
    session.run("python", "-m", "tools.crash", *session.posargs)


@nox.session
def sim(session: nox.Session) -> None:
    """The whole cluster in a deterministic simulation, many seeds: `nox -s sim -- --seeds N
    [--seed S] [--seconds T]`; a failing seed is printed with the command that replays it."""
    _install(session, "test")
    session.run("python", "-m", "diskv_trio.testing.cluster_sim", *session.posargs)


@nox.session
def netfault(session: nox.Session) -> None:
    """A crash session with every server in its own network namespace over TCP and the network
    faults made by the kernel: `nox -s netfault -- --seed S --minutes M` (needs root; skips in
    one line without; `-- --figures` prints latency and fail-over figures)."""
    _install(session, "test")
    session.run("python", "-m", "tools.crash.netfault", *session.posargs)
