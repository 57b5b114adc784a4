"""STOW-RS receive on a real `radraft serve`: the shared samples and a multi-phase CT arrive
over HTTP (from radraft's own client, from Orthanc's DICOMweb plugin as a sender no one here
wrote), land at the C-STORE paths with index rows, refusals carry PS3.18 answers, and a
dropped upload leaves nothing half-written."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import yaml
from helpers.data import DICOM_DATA
from helpers.net import free_port
from orthanc import OrthancServer
from sqlalchemy import select

from radraft.core.db import Instance, Study, make_engine, make_sessionmaker
from radraft.dicom_node.storage import InstanceStore
from radraft.reporting.phantom import write_phantom_study

RADRAFT = str(Path(sys.executable).parent / "radraft")
TOKEN = "stow-token-of-modality-one"
SAMPLES = ["study_ct_wb_contrast_kos", "series_mr_wrist_mesa", "study_mr_mra_tiny",
           "transfer_syntaxes", "modalities"]


class Served:
    def __init__(self, root: Path, port: int, process: subprocess.Popen[bytes]) -> None:
        self.root, self.port, self.process = root, port, process
        self.url = f"http://127.0.0.1:{port}"
        self.sessions = make_sessionmaker(make_engine(f"sqlite:///{root / 'data' / 'radraft.db'}"))
        self.store = InstanceStore(root / "data" / "dicom")

    def instance(self, sop_uid: str) -> Instance | None:
        with self.sessions() as session:
            return session.scalars(select(Instance).where(Instance.sop_uid == sop_uid)).first()

    def tmp_parts(self) -> list[Path]:
        return list((self.root / "data" / "tmp").glob("stow-*"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("stow")
    port = free_port()
    config = root / "radraft.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(root / "data"),
        "database_url": f"sqlite:///{root / 'data' / 'radraft.db'}",
        "dicom": {"host": "127.0.0.1", "port": free_port(), "min_free_bytes": 0,
                  "stable_seconds": 600},
        "hl7": {"host": "127.0.0.1", "port": free_port()},
        "web": {"host": "127.0.0.1", "port": port},
        "dicomweb": {"senders": {"modality1": TOKEN, "orthanc": "orthanc-token-1"},
                     "max_instance_bytes": 4 << 20},
    }))
    log = root / "serve.log"
    process = subprocess.Popen([RADRAFT, "--config", str(config), "serve"],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    server = Served(root, port, process)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def _body(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = f"b{uuid.uuid4().hex}"
    chunks = []
    for content_type, data in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode())
        chunks.append(data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="application/dicom"; boundary={boundary}'


def _stow(served: Served, parts: list[tuple[str, bytes]], token: str = TOKEN,
          content_type: str | None = None) -> httpx.Response:
    body, multipart = _body(parts)
    headers = {"Content-Type": content_type or multipart, "Accept": "application/dicom+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{served.url}/dicomweb/studies", content=body, headers=headers,
                      timeout=120)


def _uids(answer: dict[str, Any], sequence: str) -> dict[str, int]:
    return {str(item.get("00081155", {}).get("Value", [""])[0]):
            int(item.get("00081197", {}).get("Value", [0])[0])
            for item in answer.get(sequence, {}).get("Value", [])}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix not in {".md", ".txt"})


# As over C-STORE (tests/integration/test_node_samples.py): a Secondary Capture without
# Study and Series Instance UIDs is refused 0xA900; files that are not Part 10 (storescu will
# not even send them) are refused as not understood, or for their missing UIDs; a file
# whose header reads but whose pixel data is cut short is stored (no PACS validates IODs).
# Unlike C-STORE, STOW-RS carries the file meta: badVR.dcm's names another SOP Instance UID
# than its dataset, and which one is meant cannot be told (0xA900; identifiers never altered).
REFUSED = {"JPEGLSNearLossless_16.dcm": {0xA900}, "no_meta.dcm": {0xC000},
           "badVR.dcm": {0xA900},
           "meta_missing_tsyntax.dcm": {0xC000, 0xA900}, "UN_sequence.dcm": {0xC000, 0xA900}}


def test_every_sample_stored_where_c_store_stores_it(served: Served) -> None:
    files = _files(DICOM_DATA)
    assert len(files) > 40
    for path in files:
        response = _stow(served, [("application/dicom", path.read_bytes())])
        if path.name in REFUSED:
            assert response.status_code == 409, (path.name, response.text)
            assert set(_uids(response.json(), "00081198").values()) <= REFUSED[path.name]
            continue
        assert response.status_code == 200, (path.name, response.text)
        assert response.headers["content-type"].startswith("application/dicom+json")
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        sop_uid = str(ds.SOPInstanceUID)
        assert sop_uid in _uids(response.json(), "00081199")
        row = served.instance(sop_uid)
        assert row is not None
        with served.sessions() as session:
            study = session.get(Study, row.study_id)
            assert study is not None and study.calling_aet == "modality1"
        expected = served.store.path_for(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                                         sop_uid)
        assert Path(row.path) == expected
        assert expected.read_bytes() == path.read_bytes()  # the sent file, byte for byte
    assert served.tmp_parts() == []


def test_several_instances_in_one_request(served: Served) -> None:
    files = _files(DICOM_DATA / "study_ct_wb_contrast_kos")
    response = _stow(served, [("application/dicom", p.read_bytes()) for p in files])
    assert response.status_code == 200
    assert len(_uids(response.json(), "00081199")) == len(files)


def test_orthanc_sends_a_multiphase_ct_by_stow_rs(served: Served, tmp_path: Path) -> None:
    phantom = write_phantom_study(tmp_path / "ct", slices=6, size=64,
                                  phases=["non-contrast", "arterial", "portal venous"])
    files = _files(tmp_path / "ct")
    config = {"DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": {
        "radraft": {"Url": f"{served.url}/dicomweb/",
                    "HttpHeaders": {"Authorization": "Bearer orthanc-token-1"}}}}}
    with OrthancServer(tmp_path / "orthanc", dicomweb=True, extra_config=config) as pacs:
        for path in files:
            pacs.upload(path)
        [study] = pacs.find_studies()
        pacs.post("/dicom-web/servers/radraft/stow", {"Resources": [study],
                                                      "Synchronous": True})
    with served.sessions() as session:
        row = session.scalars(select(Study).where(Study.study_uid == phantom.study_uid)).one()
        assert row.image_count == len(files)
        assert row.calling_aet == "orthanc"
    assert len({pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID
                for p in files}) == 3


def test_refusals_answer_as_ps3_18_says(served: Served) -> None:
    sample = _files(DICOM_DATA / "series_mr_wrist_mesa")[0].read_bytes()
    assert _stow(served, [("application/dicom", sample)], token="").status_code == 401
    refused = _stow(served, [("application/dicom", sample)], token="wrong")
    assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]
    assert _stow(served, [("application/dicom", sample)],
                 content_type="application/dicom").status_code == 415
    # Not DICOM: 409 with Failure Reason 0xC000; mixed with a good one: 202.
    junk = _stow(served, [("application/dicom", b"\0" * 200)])
    assert junk.status_code == 409
    assert list(_uids(junk.json(), "00081198").values()) == [0xC000]
    mixed = _stow(served, [("application/dicom", sample), ("application/dicom", b"junk")])
    assert mixed.status_code == 202
    assert len(_uids(mixed.json(), "00081199")) == 1
    # Over dicomweb.max_instance_bytes: refused as out of resources, nothing kept.
    big = _stow(served, [("application/dicom", b"\1" * (5 << 20))])
    assert big.status_code == 409
    assert list(_uids(big.json(), "00081198").values()) == [0xA700]
    assert served.tmp_parts() == []
    # A part that is not application/dicom (a metadata + bulk data request) is refused.
    other = _stow(served, [("application/dicom+json", b"[]")])
    assert other.status_code == 409


def test_a_dropped_upload_stores_nothing_half_written(served: Served, tmp_path: Path) -> None:
    write_phantom_study(tmp_path / "ct", slices=2, size=64, phases=["portal venous"],
                        patient_id="DROP1", accession="ACC-DROP")
    first, second = _files(tmp_path / "ct")
    body, content_type = _body([("application/dicom", first.read_bytes()),
                                ("application/dicom", second.read_bytes())])
    cut = body.index(second.read_bytes()) + len(second.read_bytes()) // 2
    request = (f"POST /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {TOKEN}\r\nContent-Type: {content_type}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(request + body[:cut])
        time.sleep(1.0)  # let the server read what was sent before the connection drops
    first_uid = str(pydicom.dcmread(first, stop_before_pixels=True).SOPInstanceUID)
    second_uid = str(pydicom.dcmread(second, stop_before_pixels=True).SOPInstanceUID)
    deadline = time.monotonic() + 30
    while served.tmp_parts() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert served.tmp_parts() == []
    assert served.instance(second_uid) is None
    # The complete first part stood on its own (as a C-STORE before an abort would).
    row = served.instance(first_uid)
    assert row is not None and Path(row.path).read_bytes() == first.read_bytes()
    # Sent again whole, the second arrives and the first replaces itself.
    again = _stow(served, [("application/dicom", first.read_bytes()),
                           ("application/dicom", second.read_bytes())])
    assert again.status_code == 200, json.dumps(again.json())
    assert served.instance(second_uid) is not None
