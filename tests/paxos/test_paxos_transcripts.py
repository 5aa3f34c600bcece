"""Transcript tests: scripted Paxos schedules in tests/testdata/paxos/*.txt.

A file is a sequence of blocks: one directive line, a line `----`, the expected output, and
a blank line. Lines starting with `#` before a directive are comments. Run with
`pytest tests/paxos/test_paxos_transcripts.py --rewrite` (or PAXOS_REWRITE=1) to regenerate
the expected outputs; commit only diffs you understand.

Directives (each runs on one manual `Simulation`; arguments are key=value):

- `peers n=3 [naive=1]`: a new group (must come first; `naive=1`: a peer that lost its disk
  rejoins without the fence, `NAIVE_REJOIN` of `broken_rules.py`). Output: nothing.
  Example: `peers n=3`
- `start peer=0 seq=1 value=A`: the application starts an instance. Output: queued packets.
- `deliver|hold|release|drop [kind=K] [src=S] [dst=D]`: act on matching queued packets;
  `deliver` runs the receiver (replies and new messages are queued). Output: the count,
  then the queue. Example: `deliver kind=prepare dst=1`
- `wipe peer=P`: the peer loses its disk and boots recovering. Output: queued packets.
- `crash peer=P` / `restart peer=P`: stop (unsynced records lost) / start from disk.
- `partition groups=0|1,2` / `heal`: connectivity.
- `settle [ticks=N]`: step the clock until quiet (held packets stay held). Output: nothing.
- `status seq=S`: each peer's fate and value. `peers-state`: voting, epoch, floor, min, max.

After the output of any directive come the journal writes it caused, one line per input a
peer handled: `  journal 1 sync: promise seq=1 ballot=0.1.0`, the typed records in order
and whether the core asked for a sync before the replies and messages leave (`sync`) or
not (`nosync`); a sync with no record of its own is `(none)` (it waits for earlier records).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from broken_rules import NAIVE_REJOIN

from diskv_trio.paxos._parts import DEFAULT_PARTS
from diskv_trio.paxos._records import describe_record
from diskv_trio.testing.paxos_sim import Packet, SimParams, Simulation, SimulationFailure

DATA = Path(__file__).resolve().parent.parent / "testdata" / "paxos"
SEPARATOR = "----"


def _args(words: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in words:
        key, _, value = word.partition("=")
        out[key] = value
    return out


def _matcher(args: dict[str, str]):
    def match(packet: Packet) -> bool:
        return (
            ("kind" not in args or packet.kind == args["kind"])
            and ("src" not in args or packet.src == int(args["src"]))
            and ("dst" not in args or packet.dst == int(args["dst"]))
        )

    return match


def _queue(sim: Simulation) -> list[str]:
    lines = []
    for p in sim.packets():
        msg = p.reply if p.reply is not None else p.envelope.msg
        fields = {k: v for k, v in msg.to_wire().items() if k not in ("k", "src", "done")}
        held = " (held)" if p.held else ""
        lines.append(f"  {p.src}->{p.dst} {p.kind} {fields}{held}")
    return lines


def _journal(sim: Simulation) -> list[str]:
    """The journal writes since the last call, then forget them."""
    lines = []
    for index, records, must_sync in sim.journal_log:
        written = " | ".join(describe_record(r) for r in records) or "(none)"
        lines.append(f"  journal {index} {'sync' if must_sync else 'nosync'}: {written}")
    sim.journal_log.clear()
    return lines


class Runner:
    def __init__(self) -> None:
        self.sim: Simulation | None = None

    def run(self, directive: str) -> list[str]:
        words = directive.split()
        name, args = words[0], _args(words[1:])
        if name == "peers":
            params = SimParams(peer_count=int(args.get("n", "3")))
            parts = NAIVE_REJOIN if args.get("naive") == "1" else DEFAULT_PARTS
            self.sim = Simulation(1, params, manual=True, parts=parts)
            return _journal(self.sim)
        sim = self.sim
        assert sim is not None, "the first directive must be `peers`"
        try:
            return self._run(sim, name, args) + _journal(sim)
        except SimulationFailure as exc:
            return [f"FAILURE: {exc}", *_journal(sim)]

    def _run(self, sim: Simulation, name: str, args: dict[str, str]) -> list[str]:
        if name == "start":
            sim.start(int(args["peer"]), int(args["seq"]), args["value"])
            return _queue(sim)
        if name in ("deliver", "hold", "release", "drop"):
            count = getattr(sim, name)(_matcher(args))
            return [f"{name} {count}", *_queue(sim)]
        if name == "wipe":
            sim.wipe(int(args["peer"]))
            return _queue(sim)
        if name == "crash":
            sim.crash(int(args["peer"]))
            return []
        if name == "restart":
            sim.bring_up(int(args["peer"]))
            return _queue(sim)
        if name == "partition":
            sim.partition([[int(i) for i in g.split(",")] for g in args["groups"].split("|")])
            return []
        if name == "heal":
            sim.partition(None)
            return []
        if name == "settle":
            sim.settle(int(args.get("ticks", "500")))
            return []
        if name == "status":
            seq = int(args["seq"])
            return [
                f"  peer {p.index}: {p.core.status(seq)[0].name} {p.core.status(seq)[1]!r}"
                for p in sim.peers
            ]
        if name == "peers-state":
            return [
                f"  peer {p.index}: voting={p.core.voting} epoch={p.core.epoch} "
                f"floor={p.core.floor} min={p.core.min()} max={p.core.max()}"
                for p in sim.peers
            ]
        raise ValueError(f"unknown directive {name!r}")


def _parse(text: str) -> list[tuple[list[str], str, list[str]]]:
    """Blocks of (comment lines, directive, expected output lines)."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        comments: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith("#")):
            if lines[i].startswith("#"):
                comments.append(lines[i])
            i += 1
        if i >= len(lines):
            break
        directive = lines[i]
        i += 1
        assert i < len(lines) and lines[i] == SEPARATOR, f"expected {SEPARATOR} after {directive!r}"
        i += 1
        expected = []
        while i < len(lines) and lines[i].strip():
            expected.append(lines[i])
            i += 1
        blocks.append((comments, directive, expected))
    return blocks


def _render(blocks: list[tuple[list[str], str, list[str]]]) -> str:
    out = []
    for comments, directive, output in blocks:
        out.extend(comments)
        out.append(directive)
        out.append(SEPARATOR)
        out.extend(output)
        out.append("")
    return "\n".join(out)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.txt")), ids=lambda p: p.stem)
def test_transcript(path: Path, request: pytest.FixtureRequest) -> None:
    rewrite = bool(request.config.getoption("--rewrite", default=False)) or (
        os.environ.get("PAXOS_REWRITE") == "1"
    )
    blocks = _parse(path.read_text())
    runner = Runner()
    actual = [(c, d, runner.run(d)) for c, d, _ in blocks]
    if rewrite:
        path.write_text(_render(actual))
        return
    for (_, directive, expected), (_, _, got) in zip(blocks, actual, strict=True):
        assert got == expected, f"{path.name}: `{directive}` printed:\n" + "\n".join(got)


def test_transcripts_exist() -> None:
    assert len(list(DATA.glob("*.txt"))) >= 2
