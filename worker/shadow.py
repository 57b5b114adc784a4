"""Shadow mode: a rule or a profile with `mode: shadow` has its studies drafted, built and
stored like any other, but its outputs go only to destinations marked `shadow: true`.

The outbox rows for every other destination are still written, in state "shadow": the
bytes that *would* have gone out stay inspectable (console, audit) and are never sent (the
sweeper and the delivery task only touch "pending" rows). A rule switched to live later
does not release them: live applies to studies drafted from then on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from radraft.core.db import Delivery, Draft, Job
from radraft.core.settings import Settings

LIVE, SHADOW = "live", "shadow"
HELD = "shadow"  # the Delivery state of an output built in shadow mode, never sent


def draft_mode(settings: Settings, job: Job) -> str:
    """Shadow when the job's rule (as it was when the job was made) or its profile (now)
    says so; live otherwise."""
    profile = settings.profiles.get(job.profile)
    if getattr(job, "mode", LIVE) == SHADOW or (profile is not None and profile.mode == SHADOW):
        return SHADOW
    return LIVE


def deliverable_destinations(mode: str, destinations: Mapping[str, Any]) -> list[str]:
    """The destinations (name -> configured destination) that may receive in `mode`."""
    if mode != SHADOW:
        return list(destinations)
    return [name for name, dest in destinations.items() if getattr(dest, "shadow", False)]


def hold_shadow_rows(
    settings: Settings, job: Job, draft: Draft, rows: Sequence[Delivery],
) -> list[Delivery]:
    """Set the draft's mode; in shadow, park the rows for non-shadow destinations (state
    "shadow", never due). Returns the rows to deliver (the caller wakes only those)."""
    mode = draft_mode(settings, job)
    draft.mode = mode
    allowed = set(deliverable_destinations(mode, {
        row.destination: settings.destinations.get(row.destination) for row in rows}))
    send: list[Delivery] = []
    for row in rows:
        if row.destination in allowed:
            send.append(row)
            continue
        row.state, row.next_attempt_at = HELD, None
        row.last_error = "shadow mode: built and kept, not delivered"
    return send


def shadow_counts(rows: Iterable[Delivery]) -> int:
    return sum(1 for row in rows if row.state == HELD)
