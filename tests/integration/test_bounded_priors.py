"""A draft never waits on the PACS longer than pacs.timeout_s in all: a PACS sending a prior
slowly (each image within the per-operation timeout, the whole past it) is left behind,
and the prior lands in the cache for the next draft; a pending prefetch is not duplicated."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helpers.net import free_port
from helpers.worker import worker_settings
from node_helpers import ct_phase_study
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, evt
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Order, Patient, PriorPrefetch, Study, db_now
from radraft.worker.gather import bounded_pacs_priors
from radraft.worker.prefetch import prefetch_pending

FIND = "1.2.840.10008.5.1.4.1.2.2.1"
GET = "1.2.840.10008.5.1.4.1.2.2.3"


def _slow_pacs(files: list[Path], pause_s: dict[str, float]) -> tuple[Any, int]:
    first = dcmread(files[0], stop_before_pixels=True)

    def on_find(_event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        answer = Dataset()
        answer.QueryRetrieveLevel = "STUDY"
        answer.StudyInstanceUID, answer.PatientID = first.StudyInstanceUID, first.PatientID
        answer.StudyDate, answer.ModalitiesInStudy = first.StudyDate, "CT"
        yield 0xFF00, answer

    def on_get(_event: evt.Event) -> Iterator[Any]:
        yield len(files)
        for path in files:
            time.sleep(pause_s["each"])
            yield 0xFF00, dcmread(path)

    ae = AE(ae_title="SLOWPACS")
    ae.add_supported_context(FIND)
    ae.add_supported_context(GET)
    for context in StoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, scu_role=True, scp_role=True)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[
        (evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get)])
    return server, port


def test_slow_pacs_is_left_behind_and_fills_the_cache_later(
    tmp_path: Path, sessions: sessionmaker[Session], db_url: str,
) -> None:
    files = ct_phase_study(tmp_path / "prior", phases=("A",), slices=4)
    prior_uid = str(dcmread(files[0]).StudyInstanceUID)
    pause = {"each": 1.0}
    server, port = _slow_pacs(files, pause)
    try:
        settings = worker_settings(tmp_path, db_url, pacs={
            "host": "127.0.0.1", "port": port, "ae_title": "SLOWPACS", "timeout_s": 2})
        profile = settings.profiles["ct-generic"]
        with sessions() as session:
            now = db_now(session)
            study = Study(study_uid="1.2.3.4", patient_id="P1", study_date="20240301",
                          modalities="CT", first_received_at=now, last_received_at=now)
            assert bounded_pacs_priors(settings, study, profile,
                                       prefetch_pending=prefetch_pending(session, study)) == []
            cached = settings.data_dir / "priors" / prior_uid
            deadline = time.monotonic() + 60
            while not cached.is_dir() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(list(cached.glob("*.dcm"))) == 4  # whole, for the next draft
            # An order's prefetch for the patient still on its way: no second retrieval.
            patient = Patient(patient_id="P1", updated_at=now)
            session.add(patient)
            session.flush()
            order = Order(accession="A1", patient_ref=patient.id, received_at=now,
                          updated_at=now)
            session.add(order)
            session.flush()
            pending = PriorPrefetch(order_id=order.id, patient_id="P1", state="running",
                                    created_at=now)
            session.add(pending)
            session.commit()
            # A fast PACS and an empty cache: only the pending prefetch keeps this empty.
            pause["each"] = 0.0
            shutil.rmtree(cached)
            assert bounded_pacs_priors(settings, study, profile,
                                       prefetch_pending=prefetch_pending(session, study)) == []
            pending.state = "done"  # the prefetch finished (with nothing for this study)
            session.commit()
            assert bounded_pacs_priors(
                settings, study, profile,
                prefetch_pending=prefetch_pending(session, study)) == [cached]
    finally:
        server.shutdown()
