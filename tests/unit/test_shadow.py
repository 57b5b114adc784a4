"""Shadow mode's decisions, without a database (issue 21)."""

from __future__ import annotations

from radraft.core.db import Job
from radraft.core.settings import Settings
from radraft.worker.shadow import deliverable_destinations, draft_mode

DESTINATIONS = {
    "pacs": {"kind": "dicom", "host": "pacs", "port": 104, "ae_title": "PACS"},
    "ris": {"kind": "hl7", "host": "ris", "port": 2575},
    "copy": {"kind": "folder", "path": "/tmp/shadow", "shadow": True},
}


def test_only_shadow_destinations_receive_in_shadow_mode() -> None:
    settings = Settings(destinations=DESTINATIONS)
    assert deliverable_destinations("live", settings.destinations) == ["pacs", "ris", "copy"]
    assert deliverable_destinations("shadow", settings.destinations) == ["copy"]
    assert deliverable_destinations("shadow", {}) == []


def test_rule_or_profile_makes_a_draft_shadow() -> None:
    settings = Settings(profiles={"ct-generic": {}, "mr-generic": {"mode": "shadow"}})
    assert draft_mode(settings, Job(profile="ct-generic", mode="live")) == "live"
    assert draft_mode(settings, Job(profile="ct-generic", mode="shadow")) == "shadow"
    assert draft_mode(settings, Job(profile="mr-generic", mode="live")) == "shadow"
