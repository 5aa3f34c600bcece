"""The seams the simulation stands on, each used on its own: a transport for the RPC layer,
a disk for a server's directory, a seeded entropy source, the pinned scheduler.

How: an RPC server and pool with HMAC credentials talk over a simulated network; a server
directory is opened, crashed and lost on a simulated disk; ids drawn in two seeded runs are
compared; Trio's scheduler state is compared before and after a pinned block.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import trio
import trio._core._run as trio_run
import trio.testing

from diskv_trio import _entropy
from diskv_trio.net import (
    CLIENTS,
    CallContext,
    Credentials,
    Identity,
    Role,
    RpcServer,
    open_rpc_pool,
)
from diskv_trio.rsm import SYSTEM_HOST, Host, NodeSettings, ServerIdentity, open_directory
from diskv_trio.rsm._identity import read_identity, write_identity
from diskv_trio.testing.cluster_sim import SimDisk, SimNetwork, Trace
from diskv_trio.testing.cluster_sim._determinism import pinned

KEYS = Credentials({role: bytes([index]) * 32 for index, role in enumerate(Role)})


async def test_an_rpc_server_and_pool_work_over_a_simulated_transport(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """The handshake (HMAC proofs both ways) and a call, all through `HostTransport`s."""
    network = SimNetwork(random.Random(0), Trace())
    nursery.start_soon(network.run)
    server_host = network.add_host("server", "server:7000")
    client_host = network.add_host("client")

    async def echo(args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        return {"echo": args, "caller": context.peer_id}

    server = RpcServer(
        "server:7000",
        Identity("sim", Role.PEER, "server"),
        {"test.echo": echo},
        roles=CLIENTS,
        credentials=KEYS,
        transport=server_host,
    )
    assert await nursery.start(server.serve) == "server:7000"
    async with open_rpc_pool(
        Identity("sim", Role.CLIENT, "c1"), credentials=KEYS, transport=client_host
    ) as pool:
        reply = await pool.call("server:7000", "test.echo", {"n": 7}, deadline_s=1.0)
    assert reply == {"echo": {"n": 7}, "caller": "c1"}


def _settings(disk: SimDisk, *, bootstrap: bool) -> NodeSettings:
    host = Host(SYSTEM_HOST.transport, disk, lambda: 4242)
    return NodeSettings(
        "sim", "shardkv", 100, 0, ("a:1",), Path("/data/n"), bootstrap=bootstrap, host=host
    )


def test_a_server_directory_lives_on_the_disk_it_is_given() -> None:
    """Bootstrap writes the identity there; a crash keeps what was synced (the restart is
    intact); a lost disk is found lost; a journal made corrupt is moved aside into a lost-*
    folder named with the host's process id. Nothing touches the real /data."""
    disk = SimDisk("n", random.Random(1), Trace())

    async def main() -> None:
        opened, lost = await disk.run_sync(open_directory, _settings(disk, bootstrap=True))
        opened.append(b"first")
        opened.append(b"second")
        await disk.run_sync(opened.sync)
        opened.close()
        assert not lost
        disk.crash()
        disk.power_on()
        assert read_identity(Path("/data/n"), disk.fs) == ServerIdentity("sim", "shardkv", 100, 0)
        opened, lost = await disk.run_sync(open_directory, _settings(disk, bootstrap=False))
        assert not lost and [payload for _, payload in opened] == [b"first", b"second"]
        opened.close()
        segment = next(n for n in disk.fs.list_dir("/data/n") if n.endswith(".log"))
        data = bytearray(disk.fs.read_file(f"/data/n/{segment}"))
        data[20] ^= 0xFF  # the first record's payload: a bad record with a good one after it
        disk.files.write_file(f"/data/n/{segment}", bytes(data))
        opened, lost = await disk.run_sync(open_directory, _settings(disk, bootstrap=False))
        opened.close()
        assert lost
        assert [n for n in disk.fs.list_dir("/data/n") if n.startswith("lost-")][0].endswith(
            "-4242"
        )
        disk.wipe()
        disk.power_on()
        opened, lost = await disk.run_sync(open_directory, _settings(disk, bootstrap=False))
        opened.close()
        assert lost

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert not Path("/data/n").exists()


def test_a_crashed_boot_can_no_longer_write() -> None:
    """A node torn down after its machine crashed cannot write: the old boot's handles and
    view of the disk fail with EIO, and what it had not synced is gone; the new boot's view
    works."""
    disk = SimDisk("n", random.Random(2), Trace())

    async def main() -> None:
        old = disk.fs
        old.make_dirs("/d")
        handle = old.open_append("/d/f", create=True)
        handle.write(b"unsynced")
        disk.crash()
        disk.power_on()
        with pytest.raises(OSError):
            handle.write(b"late")
        with pytest.raises(OSError):
            old.exists("/d/f")
        assert not disk.fs.exists("/d/f")
        write_identity(Path("/d"), ServerIdentity("c", "r", 1, 0), disk.fs)
        assert read_identity(Path("/d"), disk.fs) == ServerIdentity("c", "r", 1, 0)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_seeded_run_draws_the_same_ids_and_an_unseeded_one_does_not() -> None:
    async def draw(seed: int | None) -> tuple[bytes, str, int]:
        if seed is not None:
            _entropy.seed_run(seed)
        return (
            _entropy.token_bytes(16),
            _entropy.token_hex(8),
            _entropy.new_random().getrandbits(64),
        )

    assert trio.run(draw, 5) == trio.run(draw, 5)
    assert trio.run(draw, 5) != trio.run(draw, 6)
    assert trio.run(draw, None) != trio.run(draw, None)
    assert len(_entropy.token_bytes(16)) == 16  # outside a run: the system's source


def test_the_package_exports_what_it_names() -> None:
    import diskv_trio.testing.cluster_sim as cluster_sim

    assert all(hasattr(cluster_sim, name) for name in cluster_sim.__all__)
    assert {"run_simulation", "run_scenario", "SimParams", "SimResult"} <= set(cluster_sim.__all__)


def test_pinning_the_scheduler_is_undone_after_the_block() -> None:
    before = (trio_run._ALLOW_DETERMINISTIC_SCHEDULING, trio_run._r.getstate())
    with pinned(7):
        assert trio_run._ALLOW_DETERMINISTIC_SCHEDULING
        first = trio_run._r.random()
    with pinned(7):
        assert trio_run._r.random() == first
    assert (trio_run._ALLOW_DETERMINISTIC_SCHEDULING, trio_run._r.getstate()) == before
