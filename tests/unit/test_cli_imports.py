"""The command line starts at once: importing it, `radraft --help` and `radraft config show`
load none of the heavy libraries (each command imports what it needs when it runs). A test
on what is loaded, not on a timing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pydicom", "pynetdicom", "numpy", "PIL", "av", "sqlalchemy", "alembic", "celery",
         "kombu", "torch", "transformers", "fastapi", "uvicorn", "hl7apy", "httpx",
         "radraft.core.db", "radraft.reporting", "radraft.dicom_node", "radraft.ehr")

PROBE = """
import json, sys
from radraft.worker.cli.main import app
args = json.loads(sys.argv[1])
if args:
    try:
        app(args, prog_name="radraft")
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
heavy = json.loads(sys.argv[2])
print(json.dumps(sorted(m for m in sys.modules if m in heavy or m.split(".")[0] in heavy)))
"""


@pytest.mark.parametrize("args", [[], ["--help"], ["config", "show"], ["db", "--help"],
                                  ["frames", "--help"]])
def test_the_command_line_loads_nothing_heavy(args: list[str], tmp_path: object) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == []


def test_a_command_still_finds_what_it_imports_late() -> None:
    """The lazy imports resolve: `radraft rules check` on a bad file names the line."""
    done = subprocess.run(
        [sys.executable, "-c", "from radraft.worker.cli.main import app; "
         "app(['rules', 'check', '/nonexistent/rules.yaml'], prog_name='radraft')"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "rules.yaml" in done.stderr
