"""The node's received-dataset files: unique, exclusive, every byte written, pynetdicom's shape."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from radraft.dicom_node.fast.received_file import ReceivedFile, received_file


def test_files_are_unique_and_hold_every_byte(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    payload = bytes(range(256)) * 4096  # 1 MiB, written in pynetdicom's way
    names = set()
    for _ in range(3):
        handle = received_file(delete=False, mode="wb", suffix=".dcm")
        handle.write(b"\x00" * 128)
        handle.write(memoryview(payload)[:70_000])
        handle.write(payload[70_000:])
        handle.file.flush()
        handle.close()
        path = Path(handle.name)
        assert path.parent == tmp_path and path.suffix == ".dcm"
        assert path.read_bytes() == b"\x00" * 128 + payload
        names.add(path)
    assert len(names) == 3


def test_an_existing_name_is_never_reused(tmp_path: Path) -> None:
    existing = tmp_path / "taken.dcm"
    existing.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        ReceivedFile(str(existing))
    assert existing.read_bytes() == b"keep"


def test_other_uses_are_refused() -> None:
    with pytest.raises(ValueError, match="pynetdicom"):
        received_file(delete=True)
