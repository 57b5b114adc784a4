"""The aorta located and measured on axial CT slices: the image evidence for a contrast phase.

Only a measurement a radiologist would accept says anything about contrast: the blood in
the aorta. On each sampled axial slice the spine is found (the largest > 500 HU component
near the body's midline, in its posterior part); the aorta is then looked for in front of
and to the left of it (patient's left: +x) as a round, blood-sized (12–40 mm) component
that does not touch the crop's edge and is not enclosed by bone:

- enhanced: 130–700 HU (IV contrast in the blood);
- unenhanced: −20–80 HU, at least 60 % of its border fat (−200 to −30 HU): without contrast
  the aorta is only seen where fat outlines it.

A series-level answer needs the same structure on at least three sampled slices, within
15 mm of their median position (a tube, not a bowel loop), all enhanced or all unenhanced.
Bright bowel (oral contrast), dense bone and wall calcification are not round blood-sized
components at that place on consecutive levels, so they do not count. Anything else is
"not located": no phase is asserted from the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ENHANCED_HU = (130.0, 700.0)
UNENHANCED_HU = (-20.0, 80.0)
FAT_HU = (-200.0, -30.0)
_BONE_HU = 500.0
_DIAMETER_MM = (12.0, 40.0)
_MIN_LEVELS = 3
_TUBE_MM = 15.0


@dataclass(frozen=True, slots=True)
class AxialImage:
    """One axial slice in HU, rows running anterior → posterior, columns right → left."""

    hu: npt.NDArray[np.float32]
    spacing_mm: tuple[float, float]  # (row, column) pixel size after any sub-sampling
    z_mm: float


@dataclass(frozen=True, slots=True)
class AortaFinding:
    enhanced: bool
    hu: float  # median of the per-level ROI means
    levels: int  # slices where it was found consistently
    z_range: tuple[float, float]

    def evidence(self) -> str:
        low, high = self.z_range
        where = f"z {low:.0f} to {high:.0f} mm" if low != high else f"z {low:.0f} mm"
        return f"aorta {self.hu:.0f} HU at {self.levels} levels ({where})"


@dataclass(frozen=True, slots=True)
class _Level:
    x_mm: float
    y_mm: float
    hu: float
    enhanced: bool
    z_mm: float


def _components(mask: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.intp]]:
    """4-connected components of a small mask, as arrays of flat indices."""
    rows, cols = mask.shape
    flat = mask.ravel()
    seen = np.zeros(flat.size, dtype=bool)
    out: list[npt.NDArray[np.intp]] = []
    for start in np.flatnonzero(flat):
        if seen[start]:
            continue
        seen[start] = True
        stack = [int(start)]
        members = []
        while stack:
            p = stack.pop()
            members.append(p)
            r, c = divmod(p, cols)
            for q, ok in ((p - cols, r > 0), (p + cols, r < rows - 1),
                          (p - 1, c > 0), (p + 1, c < cols - 1)):
                if ok and flat[q] and not seen[q]:
                    seen[q] = True
                    stack.append(q)
        out.append(np.asarray(members, dtype=np.intp))
    return out


def _spine(hu: npt.NDArray[np.float32], dy: float, dx: float) -> tuple[float, float] | None:
    """(column of the spine's centre, row of its anterior edge), or None."""
    body = hu > -400
    if np.count_nonzero(body) * dy * dx < 150 * 150:  # not a trunk cross-section
        return None
    rows = np.flatnonzero(body.any(axis=1))
    cols = np.flatnonzero(body.any(axis=0))
    cx = (cols[0] + cols[-1]) / 2
    band = round(35 / dx)
    top = rows[0] + (rows[-1] - rows[0]) * 0.4
    region = np.zeros_like(body)
    r0 = int(top)
    c0, c1 = max(0, int(cx) - band), min(hu.shape[1], int(cx) + band + 1)
    region[r0:, c0:c1] = hu[r0:, c0:c1] > _BONE_HU
    parts = _components(region)
    if not parts:
        return None
    largest = max(parts, key=len)
    if len(largest) * dy * dx < 100:
        return None
    r, c = np.divmod(largest, hu.shape[1])
    return float(np.median(c)), float(np.percentile(r, 5))


def _round(member_r: npt.NDArray[np.intp], member_c: npt.NDArray[np.intp], dy: float,
           dx: float) -> bool:
    """A blood-vessel-sized disc: diameter, aspect ratio and fill of its bounding box."""
    height = (member_r.max() - member_r.min() + 1) * dy
    width = (member_c.max() - member_c.min() + 1) * dx
    area = member_r.size * dy * dx
    diameter = 2 * np.sqrt(area / np.pi)
    return bool(_DIAMETER_MM[0] <= diameter <= _DIAMETER_MM[1]
                and max(height, width) / max(min(height, width), 1e-6) <= 1.4
                and area / (height * width) >= 0.62)


def _border(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown & ~mask


def _level(image: AxialImage) -> _Level | None:
    hu = image.hu
    dy, dx = image.spacing_mm
    spine = _spine(hu, dy, dx)
    if spine is None:
        return None
    spine_c, spine_front = spine
    r0 = max(0, int(spine_front - 55 / dy))
    r1 = min(hu.shape[0], int(spine_front + 25 / dy) + 1)
    c0 = max(0, int(spine_c - 15 / dx))
    c1 = min(hu.shape[1], int(spine_c + 50 / dx) + 1)
    crop = hu[r0:r1, c0:c1]
    found: list[_Level] = []
    for enhanced, (low, high) in ((True, ENHANCED_HU), (False, UNENHANCED_HU)):
        mask = (crop > low) & (crop < high)
        for members in _components(mask):
            r, c = np.divmod(members, crop.shape[1])
            if (r.min() == 0 or c.min() == 0 or r.max() == crop.shape[0] - 1
                    or c.max() == crop.shape[1] - 1):
                continue
            shape = np.zeros(crop.shape, dtype=bool)
            shape[r, c] = True
            # Calcified plaques on the wall belong to the vessel's outline.
            outline = shape | (_border(shape) & (crop >= _BONE_HU))
            orr, occ = np.nonzero(outline)
            if not _round(orr, occ, dy, dx):
                continue
            centre_r, centre_c = r.mean() + r0, c.mean() + c0
            # In front of the vertebral body, or well to its left (descending aorta).
            if not (centre_r < spine_front - 5 / dy or centre_c > spine_c + 20 / dx):
                continue
            ring = crop[_border(shape)]
            if np.mean(ring > _BONE_HU) > 0.3:
                continue  # enclosed by bone: a vertebral body, not a vessel
            if not enhanced and np.mean((ring > FAT_HU[0]) & (ring < FAT_HU[1])) < 0.6:
                continue
            inner = shape & ~_border(~shape)
            values = crop[inner] if np.count_nonzero(inner) >= 4 else crop[shape]
            found.append(_Level(centre_c * dx, centre_r * dy, float(np.mean(values)),
                                enhanced, image.z_mm))
    if len(found) != 1:
        return None  # nothing, or several candidates: not one aorta
    return found[0]


def locate_aorta(images: list[AxialImage]) -> AortaFinding | None:
    """The aorta's blood HU over the sampled slices, or None when it is not located."""
    levels = [lv for lv in (_level(img) for img in images) if lv is not None]
    if len(levels) < _MIN_LEVELS:
        return None
    x = float(np.median([lv.x_mm for lv in levels]))
    y = float(np.median([lv.y_mm for lv in levels]))
    tube = [lv for lv in levels if np.hypot(lv.x_mm - x, lv.y_mm - y) <= _TUBE_MM]
    if len(tube) < _MIN_LEVELS or len(tube) < len(levels) * 0.6:
        return None
    kinds = {lv.enhanced for lv in tube}
    if len(kinds) != 1:
        return None
    z = [lv.z_mm for lv in tube]
    return AortaFinding(kinds.pop(), float(np.median([lv.hu for lv in tube])), len(tube),
                        (min(z), max(z)))
