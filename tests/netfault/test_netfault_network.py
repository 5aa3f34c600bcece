"""The namespace network and its kernel faults, with a tiny TCP server in one namespace.

Each test makes its own network (a prefix unique to the run) and checks that TCP crosses
it, that each fault stops what it should and nothing else, that healing restores it, and
that no namespace or link of the run is left, even when the block raises.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tools.crash._netns import HostNetwork, names_with_prefix, remove_leftovers

PORT = 7999

SERVER = """
import socket, sys
listener = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    connection, _ = listener.accept()
    connection.sendall(b"hi")
    connection.close()
"""

PROBE_TIMEOUT_S = 1.0
"""A connect to a host whose packets are dropped gives up after this (a drop has no answer)."""


@contextmanager
def _server(network: HostNetwork, index: int) -> Iterator[None]:
    host = network.hosts[index]
    process = subprocess.Popen(
        ["ip", "netns", "exec", host.netns, sys.executable, "-c", SERVER, host.ip, str(PORT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "listening\n"  # the event: it is bound
        yield
    finally:
        process.kill()
        process.wait()


def _greeting_from_root(ip: str) -> bytes | str:
    try:
        with socket.create_connection((ip, PORT), timeout=PROBE_TIMEOUT_S) as connection:
            return connection.recv(2)
    except OSError as exc:
        return type(exc).__name__


def _greeting_from(network: HostNetwork, here: int, ip: str) -> str:
    code = (
        "import socket, sys\n"
        "try:\n"
        f"    c = socket.create_connection(({ip!r}, {PORT}), timeout={PROBE_TIMEOUT_S})\n"
        "    print(c.recv(2).decode())\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    done = subprocess.run(
        ["ip", "netns", "exec", network.hosts[here].netns, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def test_tcp_crosses_the_bridge_and_each_fault_cuts_what_it_should(netns_privilege: None) -> None:
    with HostNetwork(3) as network:
        server_ip = network.hosts[0].ip
        with _server(network, 0):
            assert _greeting_from_root(server_ip) == b"hi"
            assert _greeting_from(network, 1, server_ip) == "hi"

            network.block(0, 1)  # hosts 0 and 1 only
            assert _greeting_from(network, 1, server_ip) != "hi"
            assert _greeting_from(network, 2, server_ip) == "hi"
            assert _greeting_from_root(server_ip) == b"hi"

            network.isolate(0)  # host 0 from everyone
            assert _greeting_from_root(server_ip) == "TimeoutError"
            assert _greeting_from(network, 2, server_ip) != "hi"

            network.rate_limit(0, "1mbit")  # a slow link still carries a connection
            network.heal()
            assert not network.isolated and not network.blocked and not network.shaped
            assert _greeting_from_root(server_ip) == b"hi"
            assert _greeting_from(network, 1, server_ip) == "hi"
        prefix = network.prefix
    assert names_with_prefix(prefix) == []


def test_network_is_removed_when_the_block_raises(netns_privilege: None) -> None:
    network = HostNetwork(2)
    with pytest.raises(RuntimeError, match="inside"), network:
        assert len(names_with_prefix(network.prefix)) >= 2 * 2 + 1  # namespaces, veth ends, bridge
        raise RuntimeError("inside")
    assert names_with_prefix(network.prefix) == []


def test_leftovers_of_a_dead_run_are_removed_and_a_live_runs_kept(netns_privilege: None) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid now names no live process (pids are not reused this quickly)
    dead_name = f"dkv{gone.pid}-z"
    live_name = f"dkv{os.getpid()}-z"
    subprocess.run(["ip", "netns", "add", dead_name], check=True)
    subprocess.run(["ip", "netns", "add", live_name], check=True)
    try:
        removed = remove_leftovers()
        assert dead_name in removed
        assert names_with_prefix(dead_name) == []
        assert names_with_prefix(live_name) == [live_name]
    finally:
        subprocess.run(["ip", "netns", "del", dead_name], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", live_name], check=False, capture_output=True)
