"""A console user cannot freeze the server with rules (issue 25, item 3): a catastrophic
regex and a YAML alias bomb sent through the console of a real `radraft serve` while C-ECHO
and HL7 ACKs are answered by the same server. Before the fix the regex held the interpreter
for hours (the ECHO below timed out) and the bomb for minutes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from doors_helpers import VIEWER, VIEWER_PASSWORD, hl7_message, login, running_serve
from node_helpers import ct_phase_study, storescu
from pydicom import dcmread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import Study

CATASTROPHIC = r"^(([A-Z]+)*\s?)*$!"
DESCRIPTION = "CT ABDOMEN PELVIS WITH CONTRAST ENHANCEMENT ARTERIAL PHASE"
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi",
                                                                   strict=True)]
    + ["rules: [*i]", ""])
REGEX_RULES = ("rules:\n  - name: slow\n    match:\n"
               f"      study_description: '{CATASTROPHIC}'\n    action: ignore\n")


def _wait(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def test_hostile_rules_neither_stall_dicom_nor_hl7(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
) -> None:
    with running_serve(tmp_path, db_url) as served:
        [path] = ct_phase_study(tmp_path / "study", phases=("A",), slices=1,
                                description=DESCRIPTION)
        assert storescu(path, served.dicom_port).status == 0x0000
        study_uid = str(dcmread(path).StudyInstanceUID)

        def stored() -> bool:
            with sessions() as session:
                return session.scalar(select(Study.id).where(
                    Study.study_uid == study_uid)) is not None
        _wait(stored)
        rules_before = (tmp_path / "rules.yaml").read_text()
        client, csrf = served.admin()
        answers: dict[str, Any] = {}

        def attack(name: str, method: str, url: str, body: dict[str, str]) -> None:
            answers[name] = client.request(method, url, json=body,
                                           headers={"X-CSRF-Token": csrf}, timeout=600)

        attacks = [
            threading.Thread(target=attack, args=("regex", "POST", "/api/rules/test",
                                                  {"study_uid": study_uid,
                                                   "text": REGEX_RULES})),
            threading.Thread(target=attack, args=("bomb", "PUT", "/api/rules",
                                                  {"text": ALIAS_BOMB})),
        ]
        for thread in attacks:
            thread.start()
        rounds = 0
        # The server keeps answering while the console requests are in flight (and after).
        while rounds < 3 or any(t.is_alive() for t in attacks):
            assert served.echo(timeout=10) == 0x0000, "C-ECHO stalled"
            ack = served.hl7(hl7_message(f"DOORS{rounds}"), timeout=10)
            assert b"MSA|AA|DOORS" in ack, ack
            rounds += 1
            assert rounds < 200, "the console requests never finished"
        for thread in attacks:
            thread.join()

        regex = answers["regex"]
        assert regex.status_code == 200, regex.text
        [outcome] = regex.json()["outcomes"]
        assert outcome["action"] == "unmatched" and "does not match" in outcome["reasons"][0]
        bomb = answers["bomb"]
        assert bomb.status_code == 400, bomb.text
        assert "(edited text):1" in bomb.text and "anchors and aliases" in bomb.text
        assert (tmp_path / "rules.yaml").read_text() == rules_before
        # Testing rules is for admins only.
        viewer, viewer_csrf = login(served.base, VIEWER, VIEWER_PASSWORD)
        refused = viewer.post("/api/rules/test", json={"study_uid": study_uid,
                                                       "text": REGEX_RULES},
                              headers={"X-CSRF-Token": viewer_csrf})
        assert refused.status_code == 403
        assert served.alive()
