"""DICOM TLS on both sides (issue 25, item 6), with peers no one here wrote: dcmtk's
`storescu +tls` and Orthanc (DicomTlsEnabled) send to a real `radraft serve`; radraft's own
C-STORE out reaches dcmtk's `storescp +tls`. The certificate of each sender must be the
one `dicom.tls_peers` names for its calling AE title."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from doors_helpers import Pki, make_pki, running_serve
from helpers.net import free_port
from node_helpers import ct_phase_study
from orthanc import OrthancServer
from pydicom import dcmread
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Instance
from radraft.core.errors import TransientDeliveryError
from radraft.core.settings import DicomDestination, Settings
from radraft.worker.senders import send_dicom


def _stored(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Instance)) or 0)


def _storescu(pki: Pki | None, name: str, port: int, path: Path,
              calling: str = "STORESCU") -> subprocess.CompletedProcess[str]:
    tls = []
    if pki is not None:
        cert, key = pki.pair(name)
        tls = ["+tls", str(key), str(cert), "+cf", str(pki.ca)]
    return subprocess.run(["/usr/bin/storescu", "-v", *tls, "-aet", calling, "-aec", "RADRAFT",
                           "127.0.0.1", str(port), str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


def _node_tls(pki: Pki) -> dict[str, object]:
    cert, key = pki.pair("radraft.test")
    return {"tls_cert": str(cert), "tls_key": str(key), "tls_ca": str(pki.ca),
            "tls_peers": {"STORESCU": "modality.test", "ORTHANC": "orthanc.test"}}


def test_storescu_over_tls_with_its_certificate_checked(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    pki = make_pki(tmp_path / "pki", "radraft.test", "modality.test", "intruder.test")
    files = ct_phase_study(tmp_path / "study", phases=("A",), slices=3)
    with running_serve(tmp_path / "s", db_url, dicom=_node_tls(pki)) as served:
        sent = _storescu(pki, "modality.test", served.dicom_port, files[0])
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "Received Store Response (Success)" in sent.stdout + sent.stderr
        assert _stored(sessions) == 1
        # A certificate of the same CA, but not the one named for STORESCU: rejected.
        intruder = _storescu(pki, "intruder.test", served.dicom_port, files[1])
        assert intruder.returncode != 0
        assert "Association Rejected" in intruder.stdout + intruder.stderr
        # A listed certificate claiming another AE title it is not tied to: rejected.
        other_ae = _storescu(pki, "modality.test", served.dicom_port, files[1], "ORTHANC")
        assert other_ae.returncode != 0
        # No TLS at all: no association.
        plain = _storescu(None, "", served.dicom_port, files[2])
        assert plain.returncode != 0
        # A connection that never starts its handshake holds nobody else up.
        with socket.create_connection(("127.0.0.1", served.dicom_port)):
            again = _storescu(pki, "modality.test", served.dicom_port, files[2])
            assert again.returncode == 0, again.stdout + again.stderr
        assert _stored(sessions) == 2
        assert "certificate intruder.test is not the one" in served.log.read_text()


def test_orthanc_sends_over_dicom_tls(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    pki = make_pki(tmp_path / "pki", "radraft.test", "orthanc.test")
    files = ct_phase_study(tmp_path / "study", phases=("A",), slices=2)
    cert, key = pki.pair("orthanc.test")
    with running_serve(tmp_path / "s", db_url, dicom=_node_tls(pki)) as served:
        modality = {"AET": "RADRAFT", "Host": "127.0.0.1", "Port": served.dicom_port,
                    "UseDicomTls": True}
        orthanc = OrthancServer(tmp_path / "orthanc", dicom_port=free_port(),
                                http_port=free_port(), extra_config={
                                    "DicomTlsEnabled": True,
                                    "DicomTlsCertificate": str(cert),
                                    "DicomTlsPrivateKey": str(key),
                                    "DicomTlsTrustedCertificates": str(pki.ca),
                                    "DicomTlsRemoteCertificateRequired": True,
                                    "DicomModalities": {"radraft": modality}})
        with orthanc as pacs:
            ids = [pacs.upload(path)["ParentStudy"] for path in files]
            pacs.store_to("radraft", sorted(set(ids)))
        deadline = time.monotonic() + 60
        while _stored(sessions) < 2:
            assert time.monotonic() < deadline, served.log.read_text()[-3000:]
            time.sleep(0.2)
        assert served.alive()


def test_radraft_stores_out_over_tls_to_storescp(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", "pacs.test", "radraft.test")
    cert, key = pki.pair("pacs.test")
    out = tmp_path / "received"
    out.mkdir()
    port = free_port()
    scp = subprocess.Popen(["/usr/bin/storescp", "+tls", str(key), str(cert), "+cf",
                            str(pki.ca), "-aet", "PACS", "-od", str(out), str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        [path] = ct_phase_study(tmp_path / "study", phases=("A",), slices=1)
        client_cert, client_key = pki.pair("radraft.test")
        dest = DicomDestination(kind="dicom", host="127.0.0.1", port=port, ae_title="PACS",
                                tls=True, tls_ca=pki.ca, tls_cert=client_cert,
                                tls_key=client_key, timeout_s=30)
        settings = Settings(data_dir=tmp_path / "data")
        assert send_dicom(dest, settings, path.read_bytes()) == "C-STORE status 0x0000"
        [received] = list(out.iterdir())
        assert dcmread(received).SOPInstanceUID == dcmread(path).SOPInstanceUID
        # A PACS whose certificate the configured CA did not sign: not talked to.
        other = make_pki(tmp_path / "other", "x")
        with pytest.raises(TransientDeliveryError):
            send_dicom(dest.model_copy(update={"tls_ca": other.ca}), settings,
                       path.read_bytes())
        assert len(list(out.iterdir())) == 1
    finally:
        scp.terminate()
        scp.wait(10)
