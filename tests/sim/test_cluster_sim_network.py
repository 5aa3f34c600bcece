"""The simulated network keeps its rules: delay, refusal, partitions, resets, loss and
duplication, each shown on a pair of hosts under Trio's autojump clock.

Each test opens a connection through one host's transport to a listener of another, moves a
few writes and checks what arrives, and when (simulated time).
"""

from __future__ import annotations

import random

import pytest
import trio

from diskv_trio.net import parse_address
from diskv_trio.testing.cluster_sim import LinkFaults, SimNetwork, Trace

SERVER = "server:7000"


async def _pair(
    network: SimNetwork, nursery: trio.Nursery
) -> tuple[trio.abc.Stream, trio.abc.Stream]:
    """A connected (client end, server end) between hosts "client" and "server"."""
    client = network.add_host("client")
    server = network.add_host("server", SERVER)
    accepted: trio.MemorySendChannel[trio.abc.Stream]
    accepted, incoming = trio.open_memory_channel[trio.abc.Stream](1)
    ready = trio.Event()

    async def serve() -> None:
        async with server.listen(parse_address(SERVER)) as listening:
            ready.set()
            await accepted.send(await listening.listeners[0].accept())
            await trio.sleep_forever()

    nursery.start_soon(serve)
    await ready.wait()
    stream = await client.open_stream(parse_address(SERVER))
    return stream, await incoming.receive()


@pytest.fixture
async def network(nursery: trio.Nursery) -> SimNetwork:
    net = SimNetwork(random.Random(1), Trace())
    nursery.start_soon(net.run)
    return net


async def test_writes_arrive_in_order_after_the_delay(
    network: SimNetwork, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """With 10 ms one way and no jitter, each write is readable 10 ms after it was sent (up
    to the next millisecond: deliveries happen on a 1 ms grid)."""
    network.set_link("client", "server", LinkFaults(delay_s=0.01, jitter_s=0.0))
    client, server = await _pair(network, nursery)
    sent_at = trio.current_time()
    await client.send_all(b"one")
    await client.send_all(b"two")
    received = b""
    while len(received) < 6:
        received += await server.receive_some()
    assert received == b"onetwo"
    assert 0.01 <= trio.current_time() - sent_at <= 0.011


async def test_a_connect_to_a_silent_address_is_refused(
    network: SimNetwork, autojump_clock: trio.testing.MockClock
) -> None:
    client = network.add_host("client")
    network.add_host("server", SERVER)
    with pytest.raises(ConnectionRefusedError):
        await client.open_stream(parse_address(SERVER))


async def test_a_partition_stalls_connects_and_drops_writes(
    network: SimNetwork, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Across a cut a connect hangs until the caller gives up, and a write never arrives;
    once healed, the same connection carries writes again."""
    client_end, server_end = await _pair(network, nursery)
    network.partition({"client"})
    with trio.move_on_after(5) as connect:
        await network.add_host("client").open_stream(parse_address(SERVER))
    assert connect.cancelled_caught
    await client_end.send_all(b"lost")
    with trio.move_on_after(5) as receive:
        await server_end.receive_some()
    assert receive.cancelled_caught
    network.heal_partition()
    await client_end.send_all(b"after")
    assert await server_end.receive_some() == b"after"


async def test_data_sent_to_a_closed_end_comes_back_as_a_reset(
    network: SimNetwork, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """The server end closes while the FIN is cut off: the client learns of it at its next
    write, as TCP's reset tells it."""
    client_end, server_end = await _pair(network, nursery)
    network.partition({"client"})
    await server_end.aclose()
    network.heal_partition()
    await client_end.send_all(b"anyone there?")
    with pytest.raises(trio.BrokenResourceError):
        await client_end.receive_some()


async def test_a_crashed_host_closes_its_connections(
    network: SimNetwork, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    client_end, server_end = await _pair(network, nursery)
    network.host_down("server")
    assert await client_end.receive_some() == b""
    with pytest.raises(trio.ClosedResourceError):
        await server_end.send_all(b"too late")
    with pytest.raises(ConnectionRefusedError):
        await network.add_host("client").open_stream(parse_address(SERVER))


async def test_loss_and_duplication_act_on_whole_writes(
    network: SimNetwork, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Of 400 numbered writes over a link losing and duplicating 30% each, some are missing,
    some come twice, and every one that arrives is whole."""
    network.set_link("client", "server", LinkFaults(loss=0.3, duplication=0.3, reordering=0.3))
    client_end, server_end = await _pair(network, nursery)
    for number in range(400):
        await client_end.send_all(b"<%03d>" % number)
    await trio.sleep(1)
    data = await server_end.receive_some()
    writes = [data[i : i + 5] for i in range(0, len(data), 5)]
    assert all(w.startswith(b"<") and w.endswith(b">") for w in writes)
    numbers = [int(w[1:4]) for w in writes]
    assert 0 < len(set(numbers)) < 400  # some lost
    assert len(numbers) > len(set(numbers))  # some twice
    assert numbers != sorted(numbers)  # some overtaken
