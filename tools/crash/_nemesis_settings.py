"""The nemesis's settings: how often it strikes, how long a fault lasts, which kinds it
picks, and how long it waits for a server to serve again."""

SERVING_WAIT_S_MAX = 60.0
"""A restarted or resumed server must be intact and serving within this long. A lost disk is
recovered in about 2 s with intact peers reachable; the rest is margin for a loaded machine."""

SERVING_POLL_S = 0.2
"""How often a recovering server is asked whether it serves yet."""

FAULT_PUSH_DEADLINE_S = 3.0
"""One attempt at changing a server's fault settings; a paused server never answers."""

FAULT_PUSH_ATTEMPTS_MAX = 5
"""Attempts at changing a live server's fault settings before the failure counts as a problem."""

MOVE_DEADLINE_S = 15.0
"""A shard move needs a shardmaster majority, which the budget keeps available."""

HOLD_S_RANGE = (0.5, 4.0)
"""How long one fault stays in place (uniform)."""

GAP_S_RANGE = (0.2, 1.5)
"""Quiet time between two faults of one actor (uniform)."""

COMBINED_FRACTION = 0.5
"""Share of the fault period spent with several faults at once (the rest: one at a time)."""

KIND_WEIGHTS: dict[str, float] = {
    "kill": 3.0,
    "kill-lose-disk": 2.0,
    "pause": 2.0,
    "cut": 2.0,
    "unreliable": 1.5,
    "move": 1.5,
}
"""Relative frequency of each fault kind."""

LEADER_TARGET_CHANCE = 0.5
"""Chance that a kill (with or without disk loss), pause or cut strikes the current leader of
the group of the server drawn (uniformly) for it, rather than that server; a leader that cannot
be found or would break the budget leaves the drawn server as the target."""

LEADER_ASK_DEADLINE_S = 1.0
"""How long the nemesis waits for a member's status when looking for its group's leader."""

MASTER_TARGET_WEIGHT = 0.3
"""Relative chance of picking a shardmaster rather than a shardkv replica as a target."""

WATCH_S = 0.5
"""How often the nemesis looks for servers that exited on their own."""
