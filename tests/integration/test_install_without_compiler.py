"""`pip install .` with no working C compiler (CC=false) installs radraft without the frames'
slice kernel; `radraft frames` then renders the same pictures with the numpy + Pillow
fallback, and `radraft serve` answers a C-ECHO.

The temporary environment reuses this environment's dependencies through a .pth file (no
download, no dependency build) and installs radraft itself from a copy of the sources
(`--no-deps --no-build-isolation`), so nothing is written into the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from helpers.net import free_port, wait_port

from radraft.reporting.frames.slice_kernel import FORCE_ENV

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "dicom" / "study_ct_scout_axial_tiny"
SOURCES = ("core", "dicom_node", "ehr", "reporting", "worker", "pyproject.toml", "README.md")
ECHOSCU = "/usr/bin/echoscu"


@pytest.fixture(scope="module")
def bare_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with radraft installed while CC=false; returns its bin/."""
    root = tmp_path_factory.mktemp("nocc")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.so", "*.egg-info"))
        else:
            shutil.copy2(path, src / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"], check=True,
                             capture_output=True, text=True, timeout=60).stdout.strip()
    # This environment's packages (pip, setuptools and radraft's dependencies), after the
    # new environment's own site-packages: radraft itself comes from the new install.
    Path(purelib, "_radraft_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "CC": "false", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    built = subprocess.run(
        [str(python), "-m", "pip", "install", "-v", "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "."], cwd=src, env=env, capture_output=True, text=True,
        timeout=600)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    installed = Path(purelib) / "radraft"
    assert (installed / "reporting" / "frames" / "slice_kernel.py").exists()
    assert list(installed.rglob("_slice_kernel*.so")) == []
    # The compiler was asked and failed (the extension was not left out for another reason).
    assert 'building extension "radraft.reporting.frames._slice_kernel" failed' \
        in built.stdout + built.stderr
    return venv / "bin"


def _run(binary: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != FORCE_ENV}
    return subprocess.run([str(binary), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=binary.parent)


def test_frames_without_the_kernel_draw_what_the_kernel_draws(
    bare_install: Path, tmp_path: Path,
) -> None:
    kernel = _run(bare_install / "python", "-c", "from radraft.reporting.frames import "
                  "slice_kernel; print(slice_kernel.active())")
    assert kernel.returncode == 0 and kernel.stdout.strip() == "python", kernel.stderr
    bare = _run(bare_install / "radraft", "frames", str(SAMPLE), "--out", str(tmp_path / "a"),
                "--no-video")
    assert bare.returncode == 0, bare.stderr
    assert "native slice kernel is not built" in bare.stderr
    assert "frames of 448×448" in bare.stdout
    built = _run(Path(sys.executable).parent / "radraft", "frames", str(SAMPLE), "--out",
                 str(tmp_path / "b"), "--no-video")
    assert built.returncode == 0, built.stderr
    assert "not built" not in built.stderr
    for name in ("contact_sheet.png", "segments.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_serve_without_the_kernel_answers_echo(bare_install: Path, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "radraft.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "data"),
        "dicom": {"host": "127.0.0.1", "port": port, "min_free_bytes": 0},
        "hl7": {"host": "127.0.0.1", "port": free_port()},
        "web": {"host": "127.0.0.1", "port": free_port()},
    }))
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(bare_install / "radraft"), "--config", str(config),
                                    "serve"], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_port(port, timeout=120, process=process)
        echo = subprocess.run([ECHOSCU, "-aec", "RADRAFT", "127.0.0.1", str(port)],
                              capture_output=True, text=True, timeout=60)
        assert echo.returncode == 0, echo.stdout + echo.stderr + log.read_text()
    finally:
        process.terminate()
        process.wait(60)
