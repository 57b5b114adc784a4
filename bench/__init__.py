"""Benchmarks: radraft beside a reference, in the same run (`python -m bench.<name>`)."""

import sys
from pathlib import Path

# The benchmarks reuse the tests' peers (tests/orthanc.py, tests/mpps_helpers.py), whose own
# imports name the tests' helpers package (`helpers.*`, as pytest's rootdir makes it): the
# tests folder goes on the import path once, here.
_TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
