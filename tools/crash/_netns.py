"""A network of Linux network namespaces on one bridge, and the faults the kernel makes on it.

Rules it keeps:
- Each host is a network namespace with one veth pair: the inner end (in the namespace)
  holds the host's address, the outer end is a port of the run's bridge. The bridge holds
  the first address of the subnet, so this process (clients, nemesis, supervisor) reaches
  every host over TCP as a machine on the same LAN would.
- Every name starts with ``dkv<pid>-<serial>``: unique per run, and a run whose process is
  gone is recognised by its pid, so `remove_leftovers` deletes what a crashed run left behind
  without touching a live run's network.
- Faults are the kernel's, never the code under test's: a host's outer link down (isolated
  from everyone, clients too); blackhole routes between two hosts (a partition between
  them only, both directions); ``tc netem`` delay, jitter, loss, duplication and reordering
  on a host's egress (only where this kernel has sch_netem: `netem_available`); ``tc tbf``
  rate limits (a slow link). `heal` undoes all of them.
- Calls are synchronous and short (one ``ip`` or ``tc`` command each); async code runs them
  in a worker thread.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from dataclasses import dataclass, field
from functools import cache

NAME_PREFIX = "dkv"
NAME_PATTERN = re.compile(rf"^{NAME_PREFIX}(\d+)-")
"""A run's names: the prefix, the pid of the process that made them, a dash, the rest."""

INTERFACE_NAME_BYTES_MAX = 15
"""Linux interface names hold 15 bytes (IFNAMSIZ 16 with the NUL)."""

SUBNET_THIRD_OCTETS = range(16, 240)
"""Subnets tried for a run: 10.231.N.0/24, skipping any already routed in this namespace."""

HOSTS_MAX = 99
"""Host numbers use two digits in interface names (``h12``, ``v12``)."""

COMMAND_TIMEOUT_S = 10.0
"""One ``ip`` or ``tc`` command; each takes milliseconds unless the kernel is wedged."""

_serials = itertools.count()


class NetnsUnavailableError(Exception):
    """Raised when namespaces, veth pairs or a bridge cannot be made here (no privilege, no ip)."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise NetnsUnavailableError(f"{argv[0]} is not installed") from None
    if check and done.returncode != 0:
        raise NetnsUnavailableError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done


def _in(netns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("ip", "netns", "exec", netns, *argv, check=check)


@cache
def netns_unavailable_reason() -> str | None:
    """None if this process can make namespaces, veth pairs and bridges; else one line why."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN); not running as root"
    probe = f"{NAME_PREFIX}{os.getpid()}-probe"
    try:
        _run("ip", "netns", "add", probe)
        try:
            _run("ip", "link", "add", probe[:INTERFACE_NAME_BYTES_MAX], "type", "bridge")
            _run("ip", "link", "del", probe[:INTERFACE_NAME_BYTES_MAX])
        finally:
            _run("ip", "netns", "del", probe, check=False)
    except NetnsUnavailableError as exc:
        return f"network namespaces cannot be made here: {exc}"
    return None


@cache
def netem_available() -> bool:
    """True if ``tc qdisc ... netem`` works (the kernel has sch_netem), tried in a throwaway
    namespace so nothing real is shaped."""
    probe = f"{NAME_PREFIX}{os.getpid()}-netem"
    try:
        _run("ip", "netns", "add", probe)
    except NetnsUnavailableError:
        return False
    try:
        _in(probe, "ip", "link", "set", "lo", "up")
        return (
            _in(
                probe,
                "tc",
                "qdisc",
                "add",
                "dev",
                "lo",
                "root",
                "netem",
                "delay",
                "1ms",
                check=False,
            ).returncode
            == 0
        )
    except NetnsUnavailableError:
        return False
    finally:
        _run("ip", "netns", "del", probe, check=False)


NETEM_MISSING = "tc netem is not available in this kernel (no sch_netem): delay, jitter, loss, duplication and reordering faults are skipped"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphaned(name: str) -> bool:
    match = NAME_PATTERN.match(name)
    return match is not None and not _pid_alive(int(match.group(1)))


def remove_leftovers() -> list[str]:
    """Delete namespaces and links with our prefix whose run's process is gone; return their names."""
    removed = []
    for line in _run("ip", "netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if _orphaned(name):
            _run("ip", "netns", "del", name, check=False)
            removed.append(name)
    for line in _run("ip", "-o", "link", "show").stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        if _orphaned(name):
            _run("ip", "link", "del", name, check=False)
            removed.append(name)
    return removed


def names_with_prefix(prefix: str) -> list[str]:
    """Namespaces and links (in this namespace) whose name starts with `prefix`."""
    names = [
        line.split()[0] for line in _run("ip", "netns", "list").stdout.splitlines() if line.split()
    ]
    for line in _run("ip", "-o", "link", "show").stdout.splitlines():
        parts = line.split(":")
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return [name for name in names if name.startswith(prefix)]


def _free_subnet() -> str:
    """``10.231.N`` not yet routed here; the start depends on our pid so concurrent runs differ."""
    routes = _run("ip", "-4", "route", "show").stdout + _run("ip", "-4", "addr", "show").stdout
    octets = list(SUBNET_THIRD_OCTETS)
    start = os.getpid() % len(octets)
    for octet in octets[start:] + octets[:start]:
        if f"10.231.{octet}." not in routes:
            return f"10.231.{octet}"
    raise NetnsUnavailableError("no free 10.231.N.0/24 subnet for the run's bridge")


def _run_prefix() -> str:
    """``dkv<pid>-<serial>``: 12 bytes at most, leaving 3 for ``br``, ``h12``, ``v12``, ``i12``."""
    serial = "0123456789abcdefghijklmnopqrstuvwxyz"[next(_serials) % 36]
    return f"{NAME_PREFIX}{os.getpid()}-{serial}"


@dataclass(frozen=True, slots=True)
class Host:
    """One namespace: its name, the two ends of its veth pair and its address."""

    index: int
    netns: str
    outer: str
    inner: str
    ip: str


@dataclass
class HostNetwork:
    """`hosts` namespaces on one bridge; `create` builds it, `close` removes every piece.

    Use as a context manager: the network is removed however the block exits.
    """

    hosts_count: int
    prefix: str = field(default_factory=lambda: _run_prefix())
    hosts: list[Host] = field(default_factory=list)
    bridge: str = ""
    bridge_ip: str = ""
    isolated: set[int] = field(default_factory=set)
    blocked: set[frozenset[int]] = field(default_factory=set)
    shaped: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not 1 <= self.hosts_count <= HOSTS_MAX:
            raise ValueError(f"hosts_count must be 1..{HOSTS_MAX}, not {self.hosts_count}")
        assert len(self.prefix) + 3 <= INTERFACE_NAME_BYTES_MAX

    def __enter__(self) -> HostNetwork:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self) -> None:
        """Make the bridge, then each host's namespace, veth pair and address.

        Raises:
            NetnsUnavailableError: a command failed; whatever was made is removed again.
        """
        try:
            subnet = _free_subnet()
            self.bridge = f"{self.prefix}br"
            self.bridge_ip = f"{subnet}.1"
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            _run("ip", "addr", "add", f"{self.bridge_ip}/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
            for index in range(self.hosts_count):
                host = Host(
                    index,
                    f"{self.prefix}h{index}",
                    f"{self.prefix}v{index}",
                    f"{self.prefix}i{index}",
                    f"{subnet}.{index + 2}",
                )
                self.hosts.append(host)
                _run("ip", "netns", "add", host.netns)
                _run("ip", "link", "add", host.outer, "type", "veth", "peer", "name", host.inner)
                _run("ip", "link", "set", host.inner, "netns", host.netns)
                _run("ip", "link", "set", host.outer, "master", self.bridge, "up")
                _run("ip", "-n", host.netns, "addr", "add", f"{host.ip}/24", "dev", host.inner)
                _run("ip", "-n", host.netns, "link", "set", host.inner, "up")
                _run("ip", "-n", host.netns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove every namespace and link of this run (deleting a namespace deletes its veth pair)."""
        for name in names_with_prefix(self.prefix):
            _run("ip", "netns", "del", name, check=False)
            _run("ip", "link", "del", name, check=False)
        self.hosts.clear()

    def leftover_names(self) -> list[str]:
        """What `close` has not removed yet (links of a deleted namespace go asynchronously)."""
        return names_with_prefix(self.prefix)

    def host_of(self, ip: str) -> Host:
        for host in self.hosts:
            if host.ip == ip:
                return host
        raise KeyError(ip)

    # ---- faults ---------------------------------------------------------------------------

    def isolate(self, index: int) -> None:
        """Take host `index`'s link down: no packet reaches it or leaves it, from anyone."""
        _run("ip", "link", "set", self.hosts[index].outer, "down")
        self.isolated.add(index)

    def rejoin(self, index: int) -> None:
        _run("ip", "link", "set", self.hosts[index].outer, "up")
        self.isolated.discard(index)

    def block(self, a: int, b: int) -> None:
        """Drop every packet between hosts `a` and `b` (blackhole routes on both sides)."""
        for here, there in ((a, b), (b, a)):
            _run(
                "ip",
                "-n",
                self.hosts[here].netns,
                "route",
                "replace",
                "blackhole",
                f"{self.hosts[there].ip}/32",
            )
        self.blocked.add(frozenset((a, b)))

    def unblock(self, a: int, b: int) -> None:
        for here, there in ((a, b), (b, a)):
            _run(
                "ip",
                "-n",
                self.hosts[here].netns,
                "route",
                "del",
                "blackhole",
                f"{self.hosts[there].ip}/32",
                check=False,
            )
        self.blocked.discard(frozenset((a, b)))

    def netem(self, index: int, *arguments: str) -> None:
        """``tc netem ARGUMENTS`` on host `index`'s egress (e.g. ``delay 20ms 5ms loss 2%``).

        Raises:
            NetnsUnavailableError: this kernel has no netem (see `netem_available`).
        """
        host = self.hosts[index]
        _run(
            "ip",
            "netns",
            "exec",
            host.netns,
            "tc",
            "qdisc",
            "replace",
            "dev",
            host.inner,
            "root",
            "netem",
            *arguments,
        )
        self.shaped.add(index)

    def netem_bridge(self, *arguments: str) -> None:
        """``tc netem`` on what this namespace sends onto the bridge (the clients' egress)."""
        _run("tc", "qdisc", "replace", "dev", self.bridge, "root", "netem", *arguments)
        self.shaped.add(-1)

    def rate_limit(self, index: int, rate: str) -> None:
        """A slow link: ``tc tbf`` at `rate` (e.g. ``2mbit``) on host `index`'s egress."""
        host = self.hosts[index]
        _run(
            "ip",
            "netns",
            "exec",
            host.netns,
            "tc",
            "qdisc",
            "replace",
            "dev",
            host.inner,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            "32kbit",
            "latency",
            "200ms",
        )
        self.shaped.add(index)

    def unshape(self, index: int) -> None:
        """Remove host `index`'s egress qdisc (-1: the bridge's)."""
        if index < 0:
            _run("tc", "qdisc", "del", "dev", self.bridge, "root", check=False)
        else:
            host = self.hosts[index]
            _run(
                "ip",
                "netns",
                "exec",
                host.netns,
                "tc",
                "qdisc",
                "del",
                "dev",
                host.inner,
                "root",
                check=False,
            )
        self.shaped.discard(index)

    def heal(self) -> None:
        """Undo every fault: links up, blackholes gone, qdiscs removed."""
        for index in list(self.isolated):
            self.rejoin(index)
        for pair in list(self.blocked):
            self.unblock(*sorted(pair))
        for index in list(self.shaped):
            self.unshape(index)
