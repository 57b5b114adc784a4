"""Partial received files: the sweep at an association's end keeps what is held open and
removes the rest; the start-up clean removes every receiving process's leftovers."""

from __future__ import annotations

from pathlib import Path

from radraft.dicom_node.storage.files import InstanceStore
from radraft.dicom_node.storage.leftovers import LeftoverSweeper


def test_the_sweep_removes_unheld_files_and_keeps_open_ones(tmp_path: Path) -> None:
    folder = tmp_path / "rx-1"
    folder.mkdir()
    (folder / "aborted.dcm").write_bytes(b"partial")
    with (folder / "receiving.dcm").open("wb") as receiving:
        receiving.write(b"in progress")
        assert LeftoverSweeper(folder).sweep(collect=True) == 1
        assert sorted(p.name for p in folder.iterdir()) == ["receiving.dcm"]
    assert LeftoverSweeper(folder).sweep() == 1
    assert list(folder.iterdir()) == []


def test_start_up_cleans_every_receiving_process_folder(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path / "dicom")
    store.prepare()
    (store.tmp_dir / "rx-4242").mkdir()
    (store.tmp_dir / "rx-4242" / "cut.dcm").write_bytes(b"x")
    (store.tmp_dir / "copy.part").write_bytes(b"y")
    assert store.clean_tmp() == 2
    assert list(store.tmp_dir.iterdir()) == []
