"""Orthanc (the Debian `Orthanc` binary) as a real PACS peer, started by tests on free ports.

Reusable by every test that needs a PACS:

    with OrthancServer(tmp_path, aet="ORTHANC",
                       modalities={"radraft": Modality("RADRAFT", "127.0.0.1", 11112)}) as pacs:
        pacs.upload(path)                       # REST: POST /instances
        pacs.store_to("radraft", [study_id])    # REST: /modalities/radraft/store (C-STORE out)
        pacs.find_studies()                     # REST: GET /studies

Orthanc runs with its own JSON configuration in a temporary folder (never as the system
service), with TCP_NODELAY on (see bench/ingest.py) and storage fsync (`SyncStorageArea`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from helpers.net import free_port

ORTHANC_BIN = "/usr/sbin/Orthanc"
# Debian's orthanc-dicomweb: STOW-RS, QIDO-RS and WADO-RS under <url>/dicom-web.
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


@dataclass(frozen=True)
class Modality:
    """A DICOM peer Orthanc knows (for C-STORE/C-MOVE to it, or to accept it)."""

    ae_title: str
    host: str
    port: int


@dataclass
class OrthancServer:
    """An Orthanc process on free ports with a configuration of its own in `folder`."""

    folder: Path
    aet: str = "ORTHANC"
    modalities: dict[str, Modality] = field(default_factory=dict)
    dicom_port: int = 0
    http_port: int = 0
    sync_storage: bool = True
    extra_config: dict[str, Any] = field(default_factory=dict)
    dicomweb: bool = False
    process: subprocess.Popen[bytes] | None = None

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "Name": self.aet,
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "StorageCompression": False,
            "SyncStorageArea": self.sync_storage,
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomModalities": {
                name: [m.ae_title, m.host, m.port] for name, m in self.modalities.items()
            },
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpServerEnabled": True,
            "Plugins": [],
            "ConcurrentJobs": 4,
            "DicomScuTimeout": 30,
            "DicomAssociationCloseDelay": 0,
        }
        if self.dicomweb:
            config["Plugins"] = [DICOMWEB_PLUGIN]
            config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
        config.update(self.extra_config)
        return config

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self, timeout: float = 30.0) -> OrthancServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dicom_port = self.dicom_port or free_port()
        self.http_port = self.http_port or free_port()
        config_path = self.folder / "orthanc.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        env = dict(os.environ, TCP_NODELAY="1")
        log = (self.folder / "orthanc.log").open("wb")
        self.process = subprocess.Popen(
            [ORTHANC_BIN, str(config_path)], stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: see {self.folder / 'orthanc.log'}")
            try:
                if httpx.get(f"{self.url}/system", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"Orthanc did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def __enter__(self) -> OrthancServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- REST helpers -------------------------------------------------------------------

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=60)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any, timeout: float = 300) -> Any:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = httpx.post(f"{self.url}{path}", content=content, timeout=timeout)
        response.raise_for_status()
        return response.json() if response.content else None

    def delete(self, path: str) -> None:
        httpx.delete(f"{self.url}{path}", timeout=60).raise_for_status()

    def upload(self, path: Path) -> dict[str, Any]:
        """Store one DICOM file through REST (POST /instances)."""
        result: dict[str, Any] = self.post("/instances", path.read_bytes())
        return result

    def find_studies(self) -> list[str]:
        studies: list[str] = self.get("/studies")
        return studies

    def study_uid(self, orthanc_id: str) -> str:
        return str(self.get(f"/studies/{orthanc_id}")["MainDicomTags"]["StudyInstanceUID"])

    def store_to(self, modality: str, resources: list[str], *, synchronous: bool = True) -> Any:
        """C-STORE `resources` (Orthanc ids) to a known modality (POST /modalities/x/store)."""
        return self.post(
            f"/modalities/{modality}/store",
            {"Resources": resources, "Synchronous": synchronous},
        )

    def echo(self, modality: str) -> bool:
        try:
            self.post(f"/modalities/{modality}/echo", {})
        except httpx.HTTPStatusError:
            return False
        return True

    def clear(self) -> None:
        """Delete every study (an empty store before a benchmark run)."""
        for study in self.find_studies():
            self.delete(f"/studies/{study}")
