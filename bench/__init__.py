"""Benchmarks that print figures (not part of `make test`): `python -m bench` or `make bench`."""
