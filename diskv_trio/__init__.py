"""diskv-trio: a sharded, Paxos-replicated key/value store on Trio."""
