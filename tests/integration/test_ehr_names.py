"""The EHR store keeps every PID-5 component (family^given^middle^suffix^prefix): the
draft's PID-5 repeats them, since a middle name or suffix may tell two patients apart."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Patient, Study
from radraft.ehr.apply import apply_message
from radraft.ehr.er7 import parse
from radraft.worker.draft_job import patient_info

ADT = ("MSH|^~\\&|EHR|H|RADRAFT|H|20261201120000||ADT^A04|M1|P|2.5.1\r"
       "PID|1||MRN-N1^^^HOSP^MR||Müller^Zoë^Ana^Jr.^Dr.||19800101|F\r"
       "PV1|1|O\r").encode()


def test_every_name_component_is_stored_and_sent_back(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        apply_message(session, parse(ADT), 1, datetime.now(UTC))
        session.commit()
        [patient] = session.scalars(select(Patient).where(Patient.patient_id == "MRN-N1"))
        assert patient.name == "Müller^Zoë^Ana^Jr.^Dr."
    with sessions() as session:
        study = Study(study_uid="1.2.3", patient_id="MRN-N1")  # not stored: only its id
        info = patient_info(session, None, study)
        assert info is not None
        assert info.xpn() == ("Müller", "Zoë", "Ana", "Jr.", "Dr.")
