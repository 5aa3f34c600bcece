"""The nemesis: seeded faults on a live local cluster, never more than a group can bear.

Rules it keeps:
- Fault kinds: SIGKILL and restart; SIGKILL, empty the directory, restart (disk loss);
  SIGSTOP then SIGCONT (pause); cutting a server off from its group's peers in both
  directions (admin ``cut``); unreliable links on a whole group (admin ``unreliable``); moving a
  shard (shardmaster Move). Shardmasters are targets too: they are a replica group as well.
- Budget: a server that is killed, paused, cut off, or restarted but not yet intact and
  serving is *broken*. A group never has more than a minority broken (1 of 3, 2 of 5), so every
  group must stay available. A target is reserved in the same step it is chosen in, so
  concurrent actors cannot overrun the budget. Unreliable links and moves break nobody.
- A restarted process starts with no faults set: the cut and unreliable settings wanted for
  it are pushed again once it answers, so a fault on a peer is not silently healed.
- Leaders are favoured: a fault that strikes one server strikes, with `LEADER_TARGET_CHANCE`,
  the current leader of the group of the server drawn for it (as the members' statuses say),
  else the drawn server. The random draws do not depend on the cluster's answers, so a seed
  replays the same groups and the same leader-or-drawn choices; the timeline marks each fault
  that struck a leader and the report counts them.
- First one fault at a time, then several actors at once (combined). When the fault period
  ends every actor cuts its hold short and heals what it broke; `heal_all` then clears
  everything, restarts whatever is down and waits until every server serves.
"""

from __future__ import annotations

import random
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import trio

from diskv_trio.cluster import ClusterError, LocalCluster
from diskv_trio.net import RpcRemoteError, RpcUnavailable
from diskv_trio.shardmaster import SHARD_COUNT

from ._events import Timeline
from ._leaders import find_leader
from ._nemesis_settings import (
    COMBINED_FRACTION,
    FAULT_PUSH_ATTEMPTS_MAX,
    FAULT_PUSH_DEADLINE_S,
    GAP_S_RANGE,
    HOLD_S_RANGE,
    KIND_WEIGHTS,
    LEADER_TARGET_CHANCE,
    MASTER_TARGET_WEIGHT,
    MOVE_DEADLINE_S,
    SERVING_POLL_S,
    SERVING_WAIT_S_MAX,
    WATCH_S,
)


@dataclass
class Broken:
    """Why a server counts against its group's budget: a fault kind, or "crashed"."""

    reason: str
    leader: bool = False
    """The server led its group when the nemesis chose it."""


class Nemesis:
    """Applies seeded faults to `cluster` and tracks which servers are broken.

    Args:
        cluster: an open local cluster whose servers are running and whose groups joined.
        rng: the session's seeded random source for fault choices.
        timeline: where events and problems go.
    """

    def __init__(self, cluster: LocalCluster, rng: random.Random, timeline: Timeline) -> None:
        self.cluster = cluster
        self.rng = rng
        self.timeline = timeline
        self.broken: dict[str, Broken] = {}
        self.paused: set[str] = set()
        self.starting: set[str] = set()
        self.crashed: set[str] = set()
        self.isolated: set[str] = set()
        self.unreliable: Counter[str] = Counter()
        self.node_ids: dict[str, str] = {}
        self._ending = trio.Event()

    # ---- groups and budget ------------------------------------------------------------

    def group_key(self, name: str) -> tuple[str, int]:
        spec = self.cluster.spec(name)
        return spec.role, spec.gid

    def group_members(self, name: str) -> list[str]:
        key = self.group_key(name)
        return [n for n in self.cluster.servers if self.group_key(n) == key]

    def _budget(self, name: str) -> int:
        return (len(self.group_members(name)) - 1) // 2

    def admissible(self, name: str) -> bool:
        """True if breaking `name` now keeps its group within its minority budget."""
        if name in self.broken:
            return False
        broken_in_group = sum(1 for n in self.group_members(name) if n in self.broken)
        return broken_in_group + 1 <= self._budget(name)

    def pick_target(self, rng: random.Random | None = None) -> str | None:
        rng = rng or self.rng
        replicas = [n for n, s in self.cluster.servers.items() if s.role == "shardkv"]
        masters = [n for n, s in self.cluster.servers.items() if s.role != "shardkv"]
        pools = [replicas, masters] if masters else [replicas]
        weights = [1.0, MASTER_TARGET_WEIGHT][: len(pools)]
        pool = rng.choices(pools, weights)[0]
        candidates = [n for n in pool if self.admissible(n)]
        if not candidates:
            candidates = [n for n in replicas + masters if self.admissible(n)]
        return rng.choice(candidates) if candidates else None

    async def choose_target(self, kind: str, rng: random.Random) -> str | None:
        """Choose and reserve (as broken by `kind`) the server a fault strikes: with
        `LEADER_TARGET_CHANCE` the leader of the drawn server's group, else the drawn server;
        None if no target fits the budget now."""
        prefer_leader = rng.random() < LEADER_TARGET_CHANCE  # drawn whatever the cluster says
        drawn = self.pick_target(rng)
        if drawn is None:
            return None
        leader = await find_leader(self.cluster, self.group_members(drawn), skip=self.broken)
        # Others may have reserved targets meanwhile: check again, and reserve before any await.
        wanted = leader if prefer_leader and leader is not None else drawn
        target = wanted if self.admissible(wanted) else drawn
        if not self.admissible(target):
            return None
        self.broken[target] = Broken(kind, leader=target == leader)
        return target

    # ---- fault settings pushed to servers ---------------------------------------------

    async def learn_node_ids(self) -> None:
        """Ask every server its node id (what `cut` lists name)."""
        for name in self.cluster.servers:
            status = await self.cluster.status(name)
            self.node_ids[name] = str(status["node"])

    def _cut_for(self, name: str) -> list[str]:
        return sorted(
            self.node_ids[peer]
            for peer in self.group_members(name)
            if peer != name and (name in self.isolated or peer in self.isolated)
        )

    async def _push(self, name: str) -> None:
        """Send `name` the cut and unreliable settings wanted for it (skipped while it is down)."""
        for _attempt in range(FAULT_PUSH_ATTEMPTS_MAX):
            if name in self.paused or name in self.starting or not self.cluster.is_running(name):
                return  # whoever resumes or restarts it pushes its settings then
            with trio.move_on_after(FAULT_PUSH_DEADLINE_S):
                try:
                    await self.cluster.set_faults(
                        name, unreliable=self.unreliable[name] > 0, cut=self._cut_for(name)
                    )
                    return
                except (RpcUnavailable, RpcRemoteError):
                    pass
            await trio.sleep(SERVING_POLL_S)
        self.timeline.problem(f"{name}: its fault settings could not be changed")

    async def _push_group(self, name: str) -> None:
        async with trio.open_nursery() as nursery:
            for member in self.group_members(name):
                nursery.start_soon(self._push, member)

    async def wait_serving(self, name: str, *, why: str) -> bool:
        """Wait until `name` says it is intact and serving; a problem if it does not in time."""
        with trio.move_on_after(SERVING_WAIT_S_MAX):
            while True:
                if not self.cluster.is_running(name):
                    self._note_crash(name)
                    return False
                try:
                    status = await self.cluster.status(name)
                except (RpcUnavailable, RpcRemoteError):
                    status = {}
                if status.get("serving") and status.get("state", "intact") == "intact":
                    return True
                await trio.sleep(SERVING_POLL_S)
        self.timeline.problem(f"{name} was not serving {SERVING_WAIT_S_MAX:g} s after {why}")
        return False

    def _note_crash(self, name: str) -> None:
        """`name` exited on its own: a problem, and it counts as broken until healed."""
        if name in self.crashed:
            return
        self.crashed.add(name)
        self.broken.setdefault(name, Broken("crashed"))
        self.timeline.problem(
            f"{name} exited on its own: {last_error(self.cluster.spec(name).log_path)}"
        )

    async def watch(self) -> None:
        """Notice servers that exit on their own (not killed by us), every `WATCH_S`."""
        while True:
            for name in self.cluster.servers:
                killed = name in self.broken and self.broken[name].reason.startswith("kill")
                if not killed and name not in self.starting and not self.cluster.is_running(name):
                    self._note_crash(name)
            await trio.sleep(WATCH_S)

    async def _hold(self, rng: random.Random) -> None:
        """Keep a fault in place for a random while, or until the fault period ends."""
        with trio.move_on_after(rng.uniform(*HOLD_S_RANGE)):
            await self._ending.wait()

    # ---- fault kinds ----------------------------------------------------------------

    async def _start_again(self, name: str) -> bool:
        """Restart `name` and wait until it answers; False (a problem) if it cannot."""
        self.starting.add(name)
        try:
            await self.cluster.restart(name, wait=True)
        except ClusterError as exc:
            self.timeline.problem(f"{name} failed to restart: {exc}")
            return False
        finally:
            self.starting.discard(name)
        return True

    async def _restart(self, name: str, why: str) -> None:
        if not await self._start_again(name):
            return  # stays broken: the budget keeps counting it
        self.timeline.note(f"restarted {name}")
        await self._push_group(name)
        if await self.wait_serving(name, why=why):
            self.timeline.note(f"{name} serves again")
            del self.broken[name]

    async def _kill(self, name: str, rng: random.Random, *, lose_disk: bool) -> None:
        kind = "kill-lose-disk" if lose_disk else "kill"
        await self.cluster.kill(name, lose_disk=lose_disk)
        self.timeline.fault(
            kind,
            f"SIGKILL {name}" + (" and emptied its directory" if lose_disk else ""),
            leader=self.broken[name].leader,
        )
        await self._hold(rng)
        await self._restart(name, kind)

    async def _pause(self, name: str, rng: random.Random) -> None:
        process = self.cluster.spec(name).process
        if process is None or process.returncode is not None:
            del self.broken[name]
            return
        self.paused.add(name)
        process.send_signal(signal.SIGSTOP)
        self.timeline.fault("pause", f"SIGSTOP {name}", leader=self.broken[name].leader)
        await self._hold(rng)
        await self.resume(name)
        self.timeline.note(f"SIGCONT {name}")
        await self._push(name)
        if await self.wait_serving(name, why="a pause"):
            del self.broken[name]

    async def resume(self, name: str) -> None:
        process = self.cluster.spec(name).process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGCONT)
        self.paused.discard(name)

    async def _cut(self, name: str, rng: random.Random) -> None:
        self.isolated.add(name)
        await self._push_group(name)
        self.timeline.fault(
            "cut", f"cut {name} off from its group", leader=self.broken[name].leader
        )
        await self._hold(rng)
        self.isolated.discard(name)
        await self._push_group(name)
        self.timeline.note(f"reconnected {name}")
        if await self.wait_serving(name, why="a cut"):
            del self.broken[name]

    async def _unreliable(self, rng: random.Random) -> None:
        gids = sorted({s.gid for s in self.cluster.servers.values() if s.role == "shardkv"})
        gid = rng.choice(gids)
        members = self.cluster.group_servers(gid)
        for member in members:
            self.unreliable[member] += 1
        await self._push_group(members[0])
        self.timeline.fault("unreliable", f"unreliable links in group {gid}")
        await self._hold(rng)
        for member in members:
            self.unreliable[member] -= 1
        await self._push_group(members[0])
        self.timeline.note(f"reliable links in group {gid}")

    async def _move(self, rng: random.Random) -> None:
        shard = rng.randrange(SHARD_COUNT)
        gid = rng.choice(self.cluster.gids)
        with trio.move_on_after(MOVE_DEADLINE_S) as scope:
            await self.cluster.shardmaster_clerk().move(shard, gid)
        if scope.cancelled_caught:
            self.timeline.problem(
                f"moving shard {shard} to group {gid} took over {MOVE_DEADLINE_S:g} s"
            )
        else:
            self.timeline.fault("move", f"moved shard {shard} to group {gid}")

    async def one_fault(self, rng: random.Random | None = None) -> bool:
        """Apply, hold and heal one random fault; False if no target fits the budget now."""
        rng = rng or self.rng
        kind = rng.choices(list(KIND_WEIGHTS), list(KIND_WEIGHTS.values()))[0]
        if kind == "unreliable":
            await self._unreliable(rng)
            return True
        if kind == "move":
            await self._move(rng)
            return True
        target = await self.choose_target(kind, rng)  # reserved as broken
        if target is None:
            return False
        if kind in ("kill", "kill-lose-disk"):
            await self._kill(target, rng, lose_disk=kind == "kill-lose-disk")
        elif kind == "pause":
            await self._pause(target, rng)
        else:
            await self._cut(target, rng)
        return True

    # ---- schedule -------------------------------------------------------------------

    async def run(self, fault_s: float, *, actors: int) -> None:
        """Faults for `fault_s` seconds: one at a time, then `actors` at once."""
        now = trio.current_time()
        single_until = now + fault_s * (1 - COMBINED_FRACTION)
        end = now + fault_s
        # Each combined-phase actor draws from its own source, seeded before anything else,
        # so one actor's choices do not shift with how many faults another one managed.
        actor_seeds = [self.rng.getrandbits(64) for _ in range(actors)]
        async with trio.open_nursery() as watcher:
            watcher.start_soon(self.watch)
            self.timeline.note("nemesis: one fault at a time")
            while trio.current_time() < single_until:
                await self.one_fault()
                await trio.sleep(self.rng.uniform(*GAP_S_RANGE))
            self.timeline.note(f"nemesis: {actors} faults at a time")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._end_at, end)
                for seed in actor_seeds:
                    nursery.start_soon(self._actor, end, random.Random(seed))
            watcher.cancel_scope.cancel()

    async def _end_at(self, end: float) -> None:
        await trio.sleep_until(end)
        self._ending.set()

    async def _actor(self, end: float, rng: random.Random) -> None:
        while trio.current_time() < end:
            if not await self.one_fault(rng):
                with trio.move_on_after(SERVING_POLL_S):
                    await self._ending.wait()
                continue
            with trio.move_on_after(rng.uniform(*GAP_S_RANGE)):
                await self._ending.wait()

    async def heal_all(self) -> None:
        """Clear every fault, restart every stopped server, wait until all serve."""
        self._ending.set()
        self.timeline.note("recovery: healing everything")
        self.isolated.clear()
        self.unreliable.clear()
        for name in list(self.paused):
            await self.resume(name)
        for name in self.cluster.servers:
            if not self.cluster.is_running(name) and await self._start_again(name):
                self.timeline.note(f"restarted {name}")
        async with trio.open_nursery() as nursery:
            for name in self.cluster.servers:
                nursery.start_soon(self._push, name)
        async with trio.open_nursery() as nursery:
            for name in self.cluster.servers:
                nursery.start_soon(self._wait_and_clear, name)

    async def _wait_and_clear(self, name: str) -> None:
        if name in self.crashed and self.cluster.is_running(name):
            self.crashed.discard(name)
        if await self.wait_serving(name, why="recovery"):
            self.broken.pop(name, None)

    def resume_all_now(self) -> None:
        """Synchronous last resort: SIGCONT every paused process (before the cluster stops)."""
        for name in list(self.paused):
            process = self.cluster.spec(name).process
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGCONT)
        self.paused.clear()


def last_error(log_path: Path) -> str:
    """The last line of a server log that names an exception (or its last line)."""
    try:
        lines = [line.strip(" |+-\n") for line in log_path.read_text(errors="replace").splitlines()]
    except OSError:
        return "(no log)"
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if ("Error" in line or "Exception" in line) and not line.startswith(
            ("ExceptionGroup", "Exception Group")
        ):
            return line
    return lines[-1] if lines else "(empty log)"
