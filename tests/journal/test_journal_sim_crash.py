"""Crashes on the simulated disk: every synced record survives, and open always succeeds.

Each seed drives a random history of appends, syncs and snapshots (unsynced records held
in the process or written to the page cache), crashed at random points, between calls or
inside one (a snapshot, a rollover, the repair done by open, ...): the crash keeps
synced bytes and a random part of the rest, maybe with garbage after it. After each crash
the journal reopens, must hold every record synced before it, and may hold later ones only
as a prefix of what was appended. Failing seeds are printed in the assertion.
"""

from __future__ import annotations

import random

from journal import Journal, SimulatedCrash, SimulatedFileSystem

SEEDS = 300


def _payload(seed: int, lsn: int, incarnation: int) -> bytes:
    return f"{seed}:{lsn}:{incarnation}".encode() * (lsn % 4 + 1)


def _run(seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    fs = SimulatedFileSystem(seed)
    hold = rng.random() < 0.5
    segment_bytes_max = rng.choice([1, 100, 1000])
    reference: list[bytes] = []  # reference[lsn - 1] is what the journal must hold
    synced = 0
    snapshot_lsn = 0
    seen = {"torn-tail": 0, "clean": 0, "crashes": 0, "mid-call": 0, "during-open": 0}
    journal = Journal.open("/j", fs=fs, segment_bytes_max=segment_bytes_max, hold_unsynced=hold)
    for incarnation in range(6):
        if rng.random() < 0.5:
            fs.crash_after(rng.randint(0, 60))
        try:
            for _ in range(rng.randint(0, 30)):
                choice = rng.random()
                if choice < 0.7:
                    lsn = journal.append(_payload(seed, len(reference) + 1, incarnation))
                    reference.append(_payload(seed, lsn, incarnation))
                elif choice < 0.93:
                    journal.sync()
                    synced = journal.synced_lsn
                else:
                    upto = rng.randint(snapshot_lsn, len(reference))
                    journal.snapshot(b"state-%d" % upto, upto)
                    snapshot_lsn, synced = upto, journal.synced_lsn
        except SimulatedCrash:
            seen["mid-call"] += 1
        fs.crash()
        seen["crashes"] += 1
        while True:
            if rng.random() < 0.3:
                fs.crash_after(rng.randint(0, 6))
            try:
                journal = Journal.open(
                    "/j", fs=fs, segment_bytes_max=segment_bytes_max, hold_unsynced=hold
                )
                break
            except SimulatedCrash:
                seen["during-open"] += 1
                fs.crash()
        fs.crash_after(None)
        seen[journal.open_report.verdict] += 1
        context = f"seed={seed} incarnation={incarnation}"
        assert journal.last_lsn >= synced, context
        start = 0
        if journal.loaded_snapshot is not None:
            start, state = journal.loaded_snapshot
            assert state == b"state-%d" % start, context
        records = list(journal)
        assert records == list(enumerate(reference[start : journal.last_lsn], start=start + 1)), (
            context
        )
        del reference[journal.last_lsn :]
        synced = journal.last_lsn
        snapshot_lsn = start
    journal.close()
    return seen


def test_synced_records_survive_simulated_crashes() -> None:
    totals = {"torn-tail": 0, "clean": 0, "crashes": 0, "mid-call": 0, "during-open": 0}
    for seed in range(SEEDS):
        for key, value in _run(seed).items():
            totals[key] += value
    assert totals["crashes"] == SEEDS * 6
    assert totals["torn-tail"] > 0  # the garbage-after-crash path was exercised
    assert totals["mid-call"] > SEEDS // 10
    assert totals["during-open"] > 0


def test_crash_undoes_unsynced_directory_changes() -> None:
    fs = SimulatedFileSystem(1)
    fs.make_dirs("/d")
    handle = fs.open_append("/d/a", create=True)
    handle.write(b"data")
    handle.sync()
    fs.crash()
    assert fs.list_dir("/d") == []  # created, file synced, directory not: gone
    handle = fs.open_append("/d/b", create=True)
    handle.write(b"data")
    handle.sync()
    fs.sync_dir("/d")
    fs.rename("/d/b", "/d/c")
    fs.crash()
    assert fs.list_dir("/d") == ["b"]
    assert fs.read_file("/d/b") == b"data"
