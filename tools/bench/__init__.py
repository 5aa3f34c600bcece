"""Benchmarks: each prints its figures beside a baseline measured in the same run.

`python -m tools.bench [NAME ...]` runs them (`nox -s bench`); `python -m tools.bench.NAME`
runs one module on its own.
"""
