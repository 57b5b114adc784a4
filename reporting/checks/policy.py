"""A profile's finding lists (settings) as the checker's policy: keys or meanings to keys."""

from __future__ import annotations

from collections.abc import Sequence

from radraft.core.errors import ConfigError
from radraft.core.settings import ProfileSettings
from radraft.reporting.checks.consistency import CheckPolicy
from radraft.reporting.codes import FINDING_SITES, FINDING_TYPES, Code


def _keys(values: Sequence[str], codes: Sequence[Code], where: str) -> frozenset[str] | None:
    if not values:
        return None
    known = {c.key.lower(): c.key for c in codes} | {c.meaning.lower(): c.key for c in codes}
    keys = set()
    for value in values:
        key = known.get(value.strip().lower())
        if key is None:
            raise ConfigError(f"{where}: {value!r} is not a code radraft knows "
                              f"(one of: {', '.join(c.meaning for c in codes)})")
        keys.add(key)
    return frozenset(keys)


def policy_for(name: str, profile: ProfileSettings) -> CheckPolicy:
    """The check policy of profile `name`; ConfigError names the key of an unknown code."""
    return CheckPolicy(
        profile=name,
        finding_types=_keys(profile.finding_types, FINDING_TYPES,
                            f"profiles.{name}.finding_types"),
        finding_sites=_keys(profile.finding_sites, FINDING_SITES,
                            f"profiles.{name}.finding_sites"),
    )
