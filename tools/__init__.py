"""Tools run from a checkout: benchmarks (`bench/`), crash and network-fault sessions
(`crash/`), and the journal tool (`diskv_journal/`).

Only `diskv_journal` is installed (as the `diskv_journal` package behind the
`diskv-journal` command); the benchmarks and the sessions ship with the sources only.
"""
