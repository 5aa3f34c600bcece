"""The harness of the end-to-end suites: a local cluster of real server processes.

It mirrors the original tests' `setup` / `kill1` / `start1` / `space` helpers on top of the
same supervisor that `diskv cluster up` uses. Shardmasters are processes too (always
reliable); every shardkv replica is a separate process, killed with SIGKILL and restarted
on its directory, or on an emptied directory for a disk loss.

The cluster uses the course's key mapping (`COURSE_SHARDING`: first character modulo 10),
and the clerks keep the course's string API (`CourseClerk`): a Get of a missing key is "".
"""

from __future__ import annotations

import random
import string
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from diskv_trio.client import Client, connect
from diskv_trio.cluster import LocalCluster, open_local_cluster
from diskv_trio.kvproto import COURSE_SHARDING
from diskv_trio.net import Role
from diskv_trio.shardmaster import ShardmasterClerk


class CourseClerk:
    """The course's Clerk over `Client`: text values, and "" for a missing key (ErrNoKey)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @property
    def shardmasters(self) -> ShardmasterClerk:
        """The course's shardmaster clerk (`mck`), through the same operator connection."""
        return self.client.shardmasters

    async def get(self, key: str) -> str:
        value = await self.client.get(key)
        return "" if value is None else value.decode("utf-8", "surrogatepass")

    async def put(self, key: str, value: str) -> None:
        await self.client.put(key, value)

    async def append(self, key: str, value: str) -> None:
        await self.client.append(key, value)


def randstring(n: int) -> str:
    """Random base64url characters, as the original tests' `randstring`."""
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(random.choice(alphabet) for _ in range(n))


@dataclass
class Course:
    """What a ported test needs: the cluster, gids by index, and clerk factory."""

    cluster: LocalCluster
    stack: AsyncExitStack

    @property
    def gids(self) -> list[int]:
        return self.cluster.gids

    def server(self, gi: int, si: int) -> str:
        return self.cluster.group_servers(self.gids[gi])[si]

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[CourseClerk]:
        """A new clerk as a context manager, for tasks that open their own."""
        # The course's clerks also move shards, so they connect as operators.
        async with connect(
            self.cluster.masters,
            cluster=self.cluster.cluster,
            credentials=self.cluster.credentials,
            role=Role.OPERATOR,
        ) as client:
            yield CourseClerk(client)

    async def clerk(self) -> CourseClerk:
        """A new clerk (client) on the cluster, closed when the test ends.

        Only for the test's own task: a child task must use `connect()` instead, since the
        clerk's context is closed by the test's exit stack.
        """
        return await self.stack.enter_async_context(self.connect())

    async def join(self, gi: int) -> None:
        await self.cluster.join(self.gids[gi])

    async def leave(self, gi: int) -> None:
        await self.cluster.leave(self.gids[gi])

    async def kill1(self, gi: int, si: int, deletefiles: bool = False) -> None:
        """SIGKILL replica si of group gi; with `deletefiles`, empty its directory."""
        await self.cluster.kill(self.server(gi, si), lose_disk=deletefiles)

    async def start1(self, gi: int, si: int) -> None:
        """Restart replica si of group gi on its directory (a restart, never a bootstrap).

        Like the original, this only starts the process: it does not wait for the server to
        answer, so the process's own start-up time counts inside the tests' timing windows.
        """
        await self.cluster.restart(self.server(gi, si), wait=False)

    def space(self) -> int:
        """Bytes in every replica's directory (all groups), as the original `space()`."""
        names = [s.name for s in self.cluster.servers.values() if s.role == "shardkv"]
        return self.cluster.disk_bytes(names)


@asynccontextmanager
async def setup(
    directory: Path, *, groups: int, replicas: int, unreliable: bool = False
) -> AsyncIterator[Course]:
    """Start 3 shardmasters and `groups` x `replicas` shardkv processes; stop them all after."""
    async with AsyncExitStack() as stack:
        cluster = await stack.enter_async_context(
            open_local_cluster(
                directory,
                groups=groups,
                replicas=replicas,
                cluster="test",
                unreliable=unreliable,
                sharding=COURSE_SHARDING,
            )
        )
        yield Course(cluster, stack)
