"""Which coded finding types fit which sites, and which body regions show a site.

Small, explicit tables (not a model of anatomy): they catch what a hallucinating model says
that cannot be true ("Pulmonary embolism" at "Bone", a brain finding cited on abdominal
frames). A type or site missing from a table is not restricted by it. Keys are the enum
values of `reporting.codes` ("SCT:59282003").
"""

from __future__ import annotations

import re

from radraft.reporting.codes import FINDING_SITES, FINDING_TYPES

_TYPE = {c.meaning: c.key for c in FINDING_TYPES}
_SITE = {c.meaning: c.key for c in FINDING_SITES}

NORMAL_TYPE = _TYPE["Normal"]
ANY_BODY = _SITE["Entire body"]


def _sites(*meanings: str) -> frozenset[str]:
    return frozenset(_SITE[m] for m in meanings) | {ANY_BODY}


_CHEST = ("Lung", "Thorax", "Heart", "Aorta")
# Types that exist only at some sites; generic types (lesion, mass, hemorrhage...) anywhere.
TYPE_SITES: dict[str, frozenset[str]] = {
    _TYPE["Pulmonary embolism"]: _sites("Lung", "Thorax", "Heart"),
    _TYPE["Pneumothorax"]: _sites("Lung", "Thorax"),
    _TYPE["Pleural effusion"]: _sites("Lung", "Thorax"),
    _TYPE["Pneumonia"]: _sites("Lung", "Thorax"),
    _TYPE["Fracture"]: _sites("Bone", "Spine", "Wrist", "Knee", "Head", "Pelvis", "Thorax",
                              "Neck"),
    _TYPE["Free air"]: _sites("Abdomen", "Pelvis", "Intestine", "Thorax"),
    _TYPE["Free fluid"]: _sites("Abdomen", "Pelvis", "Thorax", "Liver", "Spleen",
                                "Intestine"),
    _TYPE["Bowel obstruction"]: _sites("Intestine", "Abdomen", "Pelvis"),
    _TYPE["Appendicitis"]: _sites("Appendix", "Intestine", "Abdomen", "Pelvis"),
    _TYPE["Aneurysm"]: _sites("Aorta", "Brain", "Head", "Neck", "Thorax", "Abdomen",
                              "Pelvis", "Heart", "Kidney", "Spleen"),
    _TYPE["Dissection"]: _sites("Aorta", "Neck", "Head", "Brain", "Thorax", "Abdomen"),
    _TYPE["Calculus"]: _sites("Kidney", "Gallbladder", "Urinary bladder", "Abdomen",
                              "Pelvis"),
    _TYPE["Infarct"]: _sites("Brain", "Head", "Heart", "Kidney", "Spleen", "Liver",
                             "Intestine", "Lung"),
}

# Body regions a series can show (from Body Part Examined or the descriptions).
HEAD, NECK, CHEST, ABDOMEN, PELVIS, SPINE, ARM, LEG, WHOLE = (
    "head", "neck", "chest", "abdomen", "pelvis", "spine", "upper limb", "lower limb",
    "whole body")

# Regions in which a site is (at least partly) seen; lung bases on an abdominal CT, the
# upper abdomen on a chest CT, the skull on a head CT.
SITE_REGIONS: dict[str, frozenset[str]] = {
    _SITE["Brain"]: frozenset({HEAD}),
    _SITE["Head"]: frozenset({HEAD}),
    _SITE["Neck"]: frozenset({NECK, HEAD, CHEST, SPINE}),
    _SITE["Lung"]: frozenset({CHEST, ABDOMEN}),
    _SITE["Thorax"]: frozenset({CHEST, ABDOMEN}),
    _SITE["Heart"]: frozenset({CHEST, ABDOMEN}),
    _SITE["Aorta"]: frozenset({CHEST, ABDOMEN, PELVIS, NECK}),
    _SITE["Liver"]: frozenset({ABDOMEN, CHEST}),
    _SITE["Gallbladder"]: frozenset({ABDOMEN, CHEST}),
    _SITE["Pancreas"]: frozenset({ABDOMEN}),
    _SITE["Spleen"]: frozenset({ABDOMEN, CHEST}),
    _SITE["Kidney"]: frozenset({ABDOMEN, PELVIS, SPINE}),
    _SITE["Adrenal gland"]: frozenset({ABDOMEN, CHEST}),
    _SITE["Urinary bladder"]: frozenset({PELVIS, ABDOMEN}),
    _SITE["Intestine"]: frozenset({ABDOMEN, PELVIS}),
    _SITE["Appendix"]: frozenset({ABDOMEN, PELVIS}),
    _SITE["Abdomen"]: frozenset({ABDOMEN, PELVIS, CHEST}),
    _SITE["Pelvis"]: frozenset({PELVIS, ABDOMEN, LEG}),
    _SITE["Spine"]: frozenset({SPINE, NECK, CHEST, ABDOMEN, PELVIS}),
    _SITE["Wrist"]: frozenset({ARM}),
    _SITE["Knee"]: frozenset({LEG}),
    # Bone and the entire body: anything with bones in it.
}

# Words of Body Part Examined (PS3.16 CID 4031 spellings and common free text) and of
# series/study descriptions, each naming one or more regions.
_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"wholebody|whole body|\bwb\b|pet.?ct", (WHOLE,)),
    (r"chestabdpelvis|chest.?abd.?pelv|\bcap\b|thoraxabdomen|thorax.?abd",
     (CHEST, ABDOMEN, PELVIS)),
    (r"chestabdomen|chest.?abd", (CHEST, ABDOMEN)),
    (r"abdomenpelvis|abd.?pel|\bap\b", (ABDOMEN, PELVIS)),
    (r"headneck|head.?neck", (HEAD, NECK)),
    (r"head|brain|skull|cranial|cerebr|\biac\b|orbit|sinus|\bsella\b|kopf|schaedel|neuro",
     (HEAD,)),
    (r"neck|cervical|cspine|c.spine|thyroid|larynx|carotid", (NECK,)),
    (r"chest|thorax|thorac|lung|pulmo|cardiac|heart|coronar|breast|mediastin|tspine",
     (CHEST,)),
    (r"abdom|\babd\b|liver|hepat|pancrea|renal|kidney|spleen|bowel|colon|enterog|lspine|"
     r"urogra", (ABDOMEN,)),
    (r"pelvi|prostat|bladder|uterus|rectum|hip|sacrum", (PELVIS,)),
    (r"spine|spinal|vertebr", (SPINE,)),
    (r"wrist|hand|elbow|arm|shoulder|forearm|humer|extremity", (ARM,)),
    (r"knee|ankle|foot|leg|femur|tibia|extremity", (LEG,)),
)


def regions_of(*texts: str) -> frozenset[str]:
    """The body regions that Body Part Examined or a description names (empty: unknown)."""
    found: set[str] = set()
    for text in texts:
        low = text.lower().replace("_", " ")
        for pattern, regions in _WORDS:
            if re.search(pattern, low):
                found.update(regions)
    return frozenset(found)


def site_seen_in(site: str, regions: frozenset[str]) -> bool:
    """True when frames showing `regions` can show `site` (an unknown site is not limited)."""
    allowed = SITE_REGIONS.get(site)
    return allowed is None or WHOLE in regions or bool(allowed & regions)


def type_fits_site(finding_type: str, site: str) -> bool:
    allowed = TYPE_SITES.get(finding_type)
    return allowed is None or site in allowed
