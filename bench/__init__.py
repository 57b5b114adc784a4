"""Benchmarks: radraft beside a reference, in the same run (`python -m bench.<name>`)."""
