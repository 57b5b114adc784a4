"""The unit tests need no PostgreSQL driver: with `import psycopg` failing (as where it is
not installed), conftest and every unit test module still import, and a unit test runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parent
ROOT = UNIT.parents[1]

PROBE = """
import sys
sys.modules["psycopg"] = None  # `import psycopg` now raises ImportError
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
"""


def _pytest_without_psycopg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_unit_tests_import_without_psycopg() -> None:
    done = _pytest_without_psycopg("--collect-only", str(UNIT))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "error" not in done.stdout.lower().split("collected")[-1]
    assert int(done.stdout.split(" tests collected")[0].split()[-1]) > 300


def test_a_unit_test_runs_without_psycopg() -> None:
    done = _pytest_without_psycopg(str(UNIT / "test_settings.py"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout


def test_the_probe_would_notice_psycopg() -> None:
    """The blocking works: importing psycopg under the probe fails."""
    done = subprocess.run([sys.executable, "-c", 'import sys; sys.modules["psycopg"] = None\n'
                           "import psycopg"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr
