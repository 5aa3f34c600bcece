"""Timing and size limits of the Paxos layer, each with its reason.

Times are seconds of the driver's clock (Trio's clock in the peer, simulated time in
tests); the core only compares them with the `now` it is handed.
"""

from __future__ import annotations

# A proposer round that has not collected a majority by then is abandoned and retried.
# Real calls fail fast when a peer is down or cut off, so this only covers lost messages.
round_timeout_s = 0.25

# Randomised exponential back-off between a proposer's rounds, so that dueling proposers
# (TestRPCCount: all three start the same instances) settle instead of preempting each
# other forever. The cap keeps a retrying proposer prompt after a partition heals
# (TestPartition: the peer that switches sides must carry the decision over).
backoff_base_s = 0.01
backoff_max_s = 0.3

# A fence attempt without enough answers by then is retried with a new nonce. A peer that
# lost its disk must vote again within about 2 s once a majority of intact peers is
# reachable (course Test5OneLostDisk), so attempts are short and retried quickly.
fence_timeout_s = 0.25
fence_retry_min_s = 0.005
fence_retry_max_s = 0.05
# A fence call that failed (request dropped, reply lost) is sent again after this delay,
# within the same attempt, until the attempt times out.
fence_resend_s = 0.02

# A changed done value is sent on its own (paxos.done) only if no other Paxos message
# carried it to that peer within this delay: the disk-use tests need Done() to reach the
# peers within their 2.1 s wait, and the RPC-count test forbids idle traffic otherwise.
done_notice_delay_s = 0.05
done_notice_retry_max_s = 1.0

# Deadline of one Paxos RPC. Longer than a journal sync plus a round trip by far.
rpc_deadline_s = 1.0

# How far above what it knows (max(max(), min(), floor)) an instance named in a peer's
# prepare, accept or decide may lie; a request beyond it is refused (paxos.bad_request) and
# changes nothing, not even max(). New ops go above max() and a replica fills the holes
# below it a few at a time, so one message naming instance 10**15 would otherwise stall the
# group for good. The bound is relative to the *receiver's* knowledge, and a receiver that
# is legitimately further behind (back after a long downtime, or recovering from disk loss)
# loses nothing by refusing: its decisions are learned again from the answers to its own
# proposals (AlreadyDecided, which is not bounded: it answers an instance the receiver
# chose), the replica's progress probe proposes a no-op at the peers' applied instance (a
# local start, which raises max() at once), and the fence's floor and a state transfer
# raise it after a disk loss; from then on the peers' requests are within the bound again.
# A million instances is far more than any proposer has in flight, and small enough that
# the worst a buggy peer can cause is a bounded catch-up instead of an endless one.
INSTANCE_AHEAD_MAX = 1_000_000

# ---- the stable leader (DESIGN.md section 4, "The fast path") ------------------------------

# The leader heartbeats this often: followers learn "chosen up to" and that it is alive, and
# every heartbeat is a read round. Far below the election timeout so a lost one or two
# do not start an election.
heartbeat_interval_s = 0.05

# A follower that hears no heartbeat of the leader for a random time in this range runs
# its own range prepare. Random so that two followers rarely run at once; the whole range
# plus a takeover stays well under the 2 s failover target.
election_timeout_min_s = 0.3
election_timeout_max_s = 0.6

# Entries the leader has sent accepts for and not yet seen chosen; more wait in its queue.
# Bounds the memory and the accepts in flight per follower (a window, as raft's inflights).
leader_window_max = 64

# Values waiting for the window; beyond this `propose` is refused and the caller is busy.
leader_queue_max = 4096

# An accept not acknowledged by a follower within this time is sent to it again (the
# acceptor answers a repeated accept at the same ballot without a new record).
accept_resend_s = 0.1

# A read round (heartbeat round) without a majority by then is abandoned; its reads ride
# on the next round, which is still sent after they arrived.
read_round_timeout_s = 0.25

# Instances a follower scans for "chosen up to c" on one message; the rest wait for the
# next message or the application's hole filler. Bounds the work one message causes.
chosen_scan_max = 1024

# With leases (off by default): the holder's reads stop this long before the lease ends,
# for clock drift between peers over one lease.
lease_drift_s = 0.01

assert heartbeat_interval_s < election_timeout_min_s < election_timeout_max_s
assert leader_window_max <= leader_queue_max
assert lease_drift_s < heartbeat_interval_s
assert backoff_base_s < backoff_max_s
assert fence_retry_min_s < fence_retry_max_s < fence_timeout_s
assert fence_resend_s < fence_timeout_s
assert done_notice_delay_s < done_notice_retry_max_s
assert INSTANCE_AHEAD_MAX > 0

# A follower whose reported done value has not moved for this long while the leader knows
# the next instance decided is sent decides (`_catch_up.py`), up to `catch_up_batch` per
# period: two heartbeats, so a follower merely applying is not sent what it has.
catch_up_after_s = 2 * heartbeat_interval_s
catch_up_batch = 64
