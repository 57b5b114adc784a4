"""Closed coded lists the model chooses from (finding types and sites for TID 1500).

One module for every code radraft emits, so the schema enum, the SR builder and the
console agree. SCT = SNOMED CT, RADLEX = RadLex.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Code:
    value: str
    scheme: str  # "SCT", "RADLEX", "DCM", "LN"
    meaning: str

    @property
    def key(self) -> str:
        """The enum value the model emits: "SCT:52988006"."""
        return f"{self.scheme}:{self.value}"


FINDING_TYPES: tuple[Code, ...] = (
    Code("52988006", "SCT", "Lesion"),
    Code("4147007", "SCT", "Mass"),
    Code("27925004", "SCT", "Nodule"),
    Code("50960005", "SCT", "Hemorrhage"),
    Code("55641003", "SCT", "Infarct"),
    Code("36118008", "SCT", "Pneumothorax"),
    Code("60046008", "SCT", "Pleural effusion"),
    Code("233604007", "SCT", "Pneumonia"),
    Code("59282003", "SCT", "Pulmonary embolism"),
    Code("125605004", "SCT", "Fracture"),
    Code("386705008", "SCT", "Free fluid"),
    Code("54441004", "SCT", "Free air"),
    Code("81133003", "SCT", "Bowel obstruction"),
    Code("74400008", "SCT", "Appendicitis"),
    Code("432119003", "SCT", "Aneurysm"),
    Code("308546005", "SCT", "Dissection"),
    Code("44132006", "SCT", "Abscess"),
    Code("95324001", "SCT", "Calculus"),
    Code("79654002", "SCT", "Edema"),
    Code("367643001", "SCT", "Cyst"),
    Code("263654008", "SCT", "Abnormal"),
    Code("17621005", "SCT", "Normal"),
)

FINDING_SITES: tuple[Code, ...] = (
    Code("12738006", "SCT", "Brain"),
    Code("69536005", "SCT", "Head"),
    Code("45048000", "SCT", "Neck"),
    Code("39607008", "SCT", "Lung"),
    Code("51185008", "SCT", "Thorax"),
    Code("80891009", "SCT", "Heart"),
    Code("15825003", "SCT", "Aorta"),
    Code("10200004", "SCT", "Liver"),
    Code("28231008", "SCT", "Gallbladder"),
    Code("15776009", "SCT", "Pancreas"),
    Code("78961009", "SCT", "Spleen"),
    Code("64033007", "SCT", "Kidney"),
    Code("23451007", "SCT", "Adrenal gland"),
    Code("89837001", "SCT", "Urinary bladder"),
    Code("113276009", "SCT", "Intestine"),
    Code("66754008", "SCT", "Appendix"),
    Code("818983003", "SCT", "Abdomen"),
    Code("12921003", "SCT", "Pelvis"),
    Code("421060004", "SCT", "Spine"),
    Code("272673000", "SCT", "Bone"),
    Code("8205005", "SCT", "Wrist"),
    Code("72696002", "SCT", "Knee"),
    Code("38266002", "SCT", "Entire body"),
)

_BY_KEY = {c.key: c for c in FINDING_TYPES + FINDING_SITES}


def by_key(key: str) -> Code:
    """The Code for an enum value such as "SCT:52988006"; KeyError if not in the lists."""
    return _BY_KEY[key]
