"""Hardening campaigns (issue 7): fuzzing, boundaries, faults and known attacks, with figures.

`python -m hardening` runs every campaign, seeded and bounded in time, and rewrites
`docs/RELIABILITY.md`. A small slice of each campaign runs in `make test`
(`tests/test_hardening_*.py`); every input that ever broke something is kept under
`tests/regressions/` and replayed there.
"""
