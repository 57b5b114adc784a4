"""The phantom's anatomy: organs as ellipsoids with their CT numbers and MR signals, the
variants that make a CT series hard to classify (oral contrast, fat, plaques, dense bone),
and the painting of one slice from precomputed normalised-radius maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Organ:
    """An ellipsoid: centre (x, y) in mm from the image centre, radii in mm, z extent in
    fractions of the scanned range (0 = top slice)."""

    name: str
    cx: float
    cy: float
    rx: float
    ry: float
    z_from: float
    z_to: float


# Painted in this order: later organs overwrite earlier ones.
ORGANS = (
    Organ("body", 0, 10, 165, 120, -1.0, 2.0),
    Organ("muscle", 0, 10, 150, 105, -1.0, 2.0),
    Organ("lung_r", -70, -5, 60, 70, -0.3, 0.32),
    Organ("lung_l", 70, -5, 60, 70, -0.3, 0.28),
    Organ("liver", -55, -15, 85, 70, 0.18, 0.62),
    Organ("spleen", 85, 20, 35, 45, 0.22, 0.5),
    Organ("kidney_r", -60, 60, 28, 38, 0.45, 0.8),
    Organ("kidney_l", 60, 60, 28, 38, 0.42, 0.78),
    Organ("portal_vein", -25, 5, 9, 9, 0.3, 0.48),
    Organ("ivc", -22, 40, 11, 10, 0.1, 1.2),
    Organ("aorta", 8, 40, 12, 12, -1.0, 2.0),
    Organ("vertebra", 0, 85, 24, 22, -1.0, 2.0),
    Organ("cancellous", 0, 85, 20, 18, -1.0, 2.0),
    Organ("canal", 0, 105, 8, 8, -1.0, 2.0),
)

# HU per organ and phase (non-contrast, arterial, portal venous, delayed).
HU: dict[str, tuple[int, int, int, int]] = {
    "body": (-100, -100, -100, -100),
    "muscle": (45, 50, 60, 55),
    "lung_r": (-850, -850, -850, -850),
    "lung_l": (-850, -850, -850, -850),
    "liver": (55, 70, 115, 90),
    "spleen": (45, 120, 125, 95),
    "kidney_r": (30, 170, 180, 140),
    "kidney_l": (30, 170, 180, 140),
    "portal_vein": (40, 80, 180, 120),
    "ivc": (40, 60, 150, 110),
    "aorta": (40, 320, 160, 110),
    "vertebra": (1000, 1000, 1000, 1000),
    "cancellous": (230, 230, 230, 230),
    "canal": (20, 20, 20, 20),
}
# MR signal (arbitrary units) per organ for T1, T2, FLAIR-like contrasts.
MR_SIGNAL: dict[str, tuple[int, int, int]] = {
    "body": (900, 700, 600), "muscle": (350, 250, 300), "lung_r": (20, 30, 20),
    "lung_l": (20, 30, 20), "liver": (550, 300, 350), "spleen": (400, 600, 450),
    "kidney_r": (450, 650, 400), "kidney_l": (450, 650, 400), "portal_vein": (100, 800, 100),
    "ivc": (100, 800, 100), "aorta": (80, 150, 80), "vertebra": (100, 80, 100),
    "cancellous": (600, 450, 500),
    "canal": (150, 1200, 150),
}



@dataclass(frozen=True, slots=True)
class CtVariant:
    """What makes a CT phantom series hard to classify, and what its header says.

    `contrast_agent`: None keeps the default (an IV agent on contrast phases, none on the
    non-contrast one); "" writes no Contrast/Bolus elements; any other text is written as
    the agent with `route`. `bolus_start_s`: seconds from Contrast/Bolus Start Time to the
    acquisition (None: no start time). `description`: None keeps the phase's description.
    `aorta_hu` overrides the aorta's blood HU.
    """

    description: str | None = None
    contrast_agent: str | None = None
    route: str = "IV"
    bolus_start_s: float | None = None
    periaortic_fat: bool = False  # fat outlines the aorta (as in most adults)
    oral_bowel: bool = False  # bowel loops full of positive oral contrast (~600 HU)
    dense_bone: bool = False  # cortex 1800 HU, cancellous 450 HU
    calcification: bool = False  # calcified plaques on the aortic wall (~900 HU)
    aorta_hu: int | None = None


# Extra structures of a variant: bowel over the muscle, fat under the vessels, plaques over
# the aorta.
FAT = Organ("periaortic_fat", 8, 40, 21, 21, -1.0, 2.0)
BOWEL = (Organ("bowel_1", -45, -40, 20, 15, 0.35, 0.95),
          Organ("bowel_2", 45, -45, 22, 14, 0.4, 1.0),
          Organ("bowel_3", 32, 22, 10, 10, 0.55, 0.62))  # beside the aorta, short
PLAQUES = (Organ("plaque_1", 18, 36, 3, 3, -1.0, 2.0),
            Organ("plaque_2", 0, 32, 3, 2.5, -1.0, 2.0))


def organs_for(variant: CtVariant | None) -> tuple[Organ, ...]:
    if variant is None:
        return ORGANS
    organs = list(ORGANS)
    after_muscle = organs.index(next(o for o in organs if o.name == "muscle")) + 1
    if variant.oral_bowel:
        organs[after_muscle:after_muscle] = list(BOWEL)
    if variant.periaortic_fat:  # over the liver's ellipsoid, under the vessels
        at = organs.index(next(o for o in organs if o.name == "portal_vein"))
        organs[at:at] = [FAT]
    if variant.calcification:
        at = organs.index(next(o for o in organs if o.name == "aorta")) + 1
        organs[at:at] = list(PLAQUES)
    return tuple(organs)


def variant_hu(values: dict[str, int], variant: CtVariant | None) -> dict[str, int]:
    if variant is None:
        return values
    values = dict(values, periaortic_fat=-100, plaque_1=900, plaque_2=900,
                  bowel_1=600, bowel_2=550, bowel_3=650)
    if variant.dense_bone:
        values.update(vertebra=1800, cancellous=450)
    if variant.aorta_hu is not None:
        values["aorta"] = variant.aorta_hu
    return values


def radius_maps(size: int, pixel_mm: float, organs: tuple[Organ, ...] = ORGANS,
                 ) -> dict[str, npt.NDArray[np.float32]]:
    """Normalised squared radius of every organ's ellipse on the image grid."""
    coords = (np.arange(size, dtype=np.float32) - (size - 1) / 2) * pixel_mm
    maps = {}
    for organ in organs:
        dx = ((coords - organ.cx) / organ.rx) ** 2
        dy = ((coords - organ.cy) / organ.ry) ** 2
        maps[organ.name] = dy[:, None] + dx[None, :]
    return maps


def organ_scale(organ: Organ, frac: float) -> float:
    """Squared cross-section scale of an ellipsoid at fractional height `frac` (0 if absent)."""
    centre = (organ.z_from + organ.z_to) / 2
    half = (organ.z_to - organ.z_from) / 2
    t = (frac - centre) / half
    return max(0.0, 1.0 - t * t) if organ.z_from > -1 else 1.0


def paint_slice(
    out: npt.NDArray[np.int16], maps: dict[str, npt.NDArray[np.float32]], frac: float,
    values: dict[str, int], background: int, organs: tuple[Organ, ...] = ORGANS,
) -> None:
    out.fill(background)
    for organ in organs:
        s2 = organ_scale(organ, frac)
        if s2 <= 0:
            continue
        np.copyto(out, np.int16(values[organ.name]), where=maps[organ.name] <= s2)
