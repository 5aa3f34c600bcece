"""Property test: random appends, syncs, reopens and snapshots replay like a plain list.

The reference is a list of payloads indexed by LSN - 1; a snapshot's state is the CBOR of
the reference prefix it covers, so replay must give back that prefix and the rest in order.
"""

from __future__ import annotations

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from journal import Journal, SimulatedFileSystem, scan
from journal._format import encode_record

_operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(max_size=40)),
        st.tuples(st.just("sync"), st.none()),
        st.tuples(st.just("reopen"), st.none()),
        st.tuples(st.just("snapshot"), st.floats(min_value=0, max_value=1)),
    ),
    max_size=60,
)


def _check_replay(journal: Journal, reference: list[bytes]) -> None:
    snapshot_lsn = 0
    if journal.loaded_snapshot is not None:
        snapshot_lsn, state = journal.loaded_snapshot
        assert cbor2.loads(state) == reference[:snapshot_lsn]
    assert list(journal) == list(enumerate(reference[snapshot_lsn:], start=snapshot_lsn + 1))
    assert journal.last_lsn == len(reference)
    assert journal.bytes_since_snapshot == sum(
        len(encode_record(lsn, payload))
        for lsn, payload in enumerate(reference[snapshot_lsn:], start=snapshot_lsn + 1)
    )


@settings(max_examples=150, deadline=None)
@given(operations=_operations, segment_bytes_max=st.sampled_from([1, 64, 1 << 20]))
def test_random_histories_replay_as_the_reference(
    operations: list[tuple[str, object]], segment_bytes_max: int
) -> None:
    fs = SimulatedFileSystem()
    reference: list[bytes] = []
    journal = Journal.open("/j", fs=fs, segment_bytes_max=segment_bytes_max)
    snapshot_lsn = 0
    try:
        for name, argument in operations:
            if name == "append":
                assert isinstance(argument, bytes)
                reference.append(argument)
                assert journal.append(argument) == len(reference)
            elif name == "sync":
                journal.sync()
                assert journal.synced_lsn == len(reference)
            elif name == "reopen":
                journal.close()
                journal = Journal.open("/j", fs=fs, segment_bytes_max=segment_bytes_max)
                _check_replay(journal, reference)
            else:
                assert isinstance(argument, float)
                upto = snapshot_lsn + round(argument * (len(reference) - snapshot_lsn))
                journal.snapshot(cbor2.dumps(reference[:upto]), upto)
                snapshot_lsn = upto
        journal.close()
        journal = Journal.open("/j", fs=fs, segment_bytes_max=segment_bytes_max)
        _check_replay(journal, reference)
        assert scan("/j", fs=fs).verdict.kind == "clean"
    finally:
        journal.close()
