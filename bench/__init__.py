"""chapter-node benchmarks (issue 6): `python -m bench` runs them all; see bench/RESULTS.md.

Each module measures one thing and returns `Row`s (bench/common.py), every figure beside the
limit it is judged against, measured in the same run: limits, ingest, client, tally, catchup,
antientropy, scale. `bench/workload.py` makes the signed events they feed a node.
"""
