"""Frames benchmark: radraft's frame assembly beside a naive reference and the decode floor.

    python -m bench.frames [--reps 3] [--slices 200] [--size 512] [--frame-size 448]
    python -m bench.frames --petct [--reps 3]   # what PET MIP + fusion frames add


One generated CT study (3 phases × 200 slices × 512², 16-bit: about 300 MB) becomes
every slice × 3 windows (abdomen, lung, bone) at 448² — no budget cut — three ways:
- radraft: `build_frame_sequence` (top-level header elements read with struct, pixels
  read slice by slice into per-thread buffers, one table lookup windows all three
  windows at once, Pillow's BOX resize computed exactly on the packed windows, threads);
- naive: one `pydicom.dcmread` per file, sort by position along the normal, float
  windowing of three windows, PIL resize with the SAME filter (BOX: area averaging);
- floor: `pydicom.dcmread` + `pixel_array` of every file and nothing else.
Before timing, one run checks that radraft's frames equal the naive reference's within
±1 grey level. Each variant runs in a fresh process: whole-process seconds (interpreter
and imports included), in-process seconds (the work alone: each variant's modules are
imported before the clock starts, as in a worker that imports them once), frames/s and
peak RSS (ru_maxrss); medians of --reps repetitions, whose order of variants rotates. Both
ratios to the floor are printed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

WINDOWS = ("abdomen", "lung", "bone")
CACHE = Path(os.environ.get("RADRAFT_BENCH_DIR", "/tmp/radraft-bench-frames"))


def _study(slices: int, size: int) -> Path:
    from radraft.reporting.phantom import write_phantom_study

    root = CACHE / f"ct-{slices}x{size}"
    marker = CACHE / f".ct-{slices}x{size}.complete"  # outside the study folder
    if not marker.exists():
        print(f"generating 3 × {slices} slices of {size}² under {root} …", flush=True)
        write_phantom_study(root, slices=slices, size=size)
        marker.touch()
    return root


def run_radraft(study: Path, frame_size: int) -> np.ndarray:
    from radraft.core.recipe import FrameRecipe
    from radraft.reporting.frames import build_frame_sequence

    recipe = FrameRecipe(windows=list(WINDOWS), frame_size=frame_size, max_frames=1_000_000)
    return build_frame_sequence(study, recipe=recipe).frames


def run_naive(study: Path, frame_size: int) -> np.ndarray:
    """Written plainly, as a first version would be."""
    import pydicom
    from PIL import Image

    from radraft.reporting.frames.windows import CT_WINDOWS

    datasets = [pydicom.dcmread(p) for p in sorted(study.rglob("*.dcm"))]
    series: dict[str, list[Any]] = {}
    for ds in datasets:
        series.setdefault(ds.SeriesInstanceUID, []).append(ds)
    frames = []
    for members in sorted(series.values(), key=lambda m: int(m[0].SeriesNumber)):
        iop = np.array(members[0].ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        if normal[2] > 0:
            normal = -normal  # head → feet, as radraft orders axial stacks
        members.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient,
                                                                  dtype=float))))
        for name in WINDOWS:
            centre, width = CT_WINDOWS[name]
            for ds in members:
                hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
                    ds.RescaleIntercept)
                grey = np.rint(np.clip((hu - (centre - width / 2)) / width, 0, 1) * 255)
                image = Image.fromarray(grey.astype(np.uint8)).resize(
                    (frame_size, frame_size), Image.Resampling.BOX)
                rgb = np.stack([np.asarray(image)] * 3, axis=-1)
                frames.append(rgb)
    return np.stack(frames)


def run_floor(study: Path, frame_size: int) -> np.ndarray:
    import pydicom

    total = 0
    for path in sorted(study.rglob("*.dcm")):
        total += int(pydicom.dcmread(path).pixel_array[0, 0])
    return np.zeros((1, 1, 1, 3), dtype=np.uint8) + (total % 2)


def _petct_study(slices: int, size: int) -> Path:
    from radraft.reporting.phantom_pet import PetOptions, write_pet_ct_study

    root = CACHE / f"petct-{slices}x{size}"
    marker = CACHE / f".petct-{slices}x{size}.complete"
    if not marker.exists():
        print(f"generating a PET/CT: CT {slices} slices of {size}², PET {slices} slices of "
              f"192² under {root} …", flush=True)
        write_pet_ct_study(root, ct_slices=slices, ct_size=size, ct_thickness=2.0,
                           options=PetOptions(slices=slices, size=192))
        marker.touch()
    return root


def run_petct(study: Path, frame_size: int) -> np.ndarray:
    """The PET/CT with every slice (CT × 3 windows, PET on the SUV scale), MIP and fusion."""
    from radraft.core.recipe import FrameRecipe
    from radraft.reporting.frames import build_frame_sequence

    recipe = FrameRecipe(windows=list(WINDOWS), frame_size=frame_size, max_frames=1_000_000)
    return build_frame_sequence(study, recipe=recipe).frames


def run_petct_slices(study: Path, frame_size: int) -> np.ndarray:
    """The same without the PET's MIP and fusion frames."""
    from radraft.reporting.frames import pet_frames

    pet_frames.EXTRA_VIEWS = False
    return run_petct(study, frame_size)


VARIANTS = {"radraft": run_radraft, "naive": run_naive, "floor": run_floor}
PETCT = {"petct": run_petct, "petct-slices": run_petct_slices}
# What each variant imports, loaded before its clock starts (in-process = the work).
IMPORTS = {
    "radraft": ("radraft.core.recipe", "radraft.reporting.frames"),
    "naive": ("pydicom", "PIL.Image", "radraft.reporting.frames.windows"),
    "floor": ("pydicom", "pydicom.pixels"),
    "petct": ("radraft.core.recipe", "radraft.reporting.frames"),
    "petct-slices": ("radraft.core.recipe", "radraft.reporting.frames"),
}


def _child(variant: str, study: Path, frame_size: int) -> None:
    for module in IMPORTS[variant]:
        importlib.import_module(module)
    started = time.perf_counter()
    frames = {**VARIANTS, **PETCT}[variant](study, frame_size)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "frames": int(frames.shape[0]),
                      "output_bytes": int(frames.nbytes), "peak_kb": peak_kb}))


def _check(study: Path, frame_size: int) -> int:
    ours = run_radraft(study, frame_size)
    reference = run_naive(study, frame_size)
    if ours.shape != reference.shape:
        print(f"shape mismatch: radraft {ours.shape}, naive {reference.shape}")
        return 1
    diff = int(np.abs(ours.astype(np.int16) - reference.astype(np.int16)).max())
    print(f"check: {ours.shape[0]} frames, max |radraft − naive| = {diff} grey level(s)")
    return 0 if diff <= 1 else 1


def _measure(variant: str, study: Path, frame_size: int) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.frames", "--child", variant, "--study", str(study),
         "--frame-size", str(frame_size)], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frame-size", type=int, default=448)
    parser.add_argument("--child", choices=[*VARIANTS, *PETCT, "check"])
    parser.add_argument("--petct", action="store_true",
                        help="measure what the PET MIP and fusion frames add to a PET/CT")
    parser.add_argument("--study", type=Path)
    args = parser.parse_args()
    if args.child == "check":
        return _check(args.study, args.frame_size)
    if args.child:
        _child(args.child, args.study, args.frame_size)
        return 0
    from radraft.reporting.frames import RESAMPLE_NAME

    if args.petct:
        return _petct(args)
    study = _study(args.slices, args.size)
    check = subprocess.run([sys.executable, "-m", "bench.frames", "--child", "check",
                            "--study", str(study), "--frame-size", str(args.frame_size)],
                           capture_output=True, text=True, check=False)
    print(check.stdout.strip() or check.stderr.strip()[-2000:])
    if check.returncode != 0:
        print("radraft's frames differ from the reference: no timings printed")
        return 1
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    names = list(VARIANTS)
    for rep in range(args.reps):
        # The order rotates: on this VM a run after one that freed gigabytes (naive) pays
        # for memory the host took back, so no variant always follows the same one.
        for variant in names[rep % len(names):] + names[:rep % len(names)]:
            results[variant].append(_measure(variant, study, args.frame_size))
            r = results[variant][-1]
            print(f"  rep {rep + 1}/{args.reps} {variant:8} {r['wall']:.2f} s whole, "
                  f"{r['seconds']:.2f} s in-process, peak {r['peak_kb'] / 1024:.0f} MiB",
                  flush=True)
    med = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for v, rs in results.items()}
    frames = med["radraft"]["frames"]
    out_mib = med["radraft"]["output_bytes"] / 2**20
    print(f"\n{3 * args.slices} slices of {args.size}² → {frames:.0f} frames of "
          f"{args.frame_size}² ({out_mib:.0f} MiB of frames), resized by {RESAMPLE_NAME}; "
          f"medians of {args.reps}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'variant':8} {'whole s':>8} {'in-proc s':>10} {'frames/s':>9} {'peak MiB':>9} "
          f"{'peak/out':>9} {'naive/x whole':>14} {'x/floor whole':>14} "
          f"{'x/floor in-proc':>16}")
    for variant, m in med.items():
        rate = frames / m["seconds"] if variant != "floor" else float("nan")
        per_output = m["peak_kb"] * 1024 / med["radraft"]["output_bytes"]
        print(f"{variant:8} {m['wall']:8.2f} {m['seconds']:10.2f} {rate:9.0f} "
              f"{m['peak_kb'] / 1024:9.0f} {per_output:9.2f} "
              f"{med['naive']['wall'] / m['wall']:14.2f} "
              f"{m['wall'] / med['floor']['wall']:14.2f} "
              f"{m['seconds'] / med['floor']['seconds']:16.2f}")
    return 0


def _petct(args: argparse.Namespace) -> int:
    study = _petct_study(args.slices, args.size)
    results: dict[str, list[dict[str, float]]] = {v: [] for v in PETCT}
    names = list(PETCT)
    for rep in range(args.reps):
        for variant in names[rep % 2:] + names[:rep % 2]:
            results[variant].append(_measure(variant, study, args.frame_size))
            r = results[variant][-1]
            print(f"  rep {rep + 1}/{args.reps} {variant:12} {r['frames']:.0f} frames, "
                  f"{r['wall']:.2f} s whole, {r['seconds']:.2f} s in-process, peak "
                  f"{r['peak_kb'] / 1024:.0f} MiB", flush=True)
    med = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for v, rs in results.items()}
    full, base = med["petct"], med["petct-slices"]
    print(f"\nPET/CT ({args.slices} CT slices of {args.size}² × 3 windows, {args.slices} PET "
          f"slices of 192²) at {args.frame_size}²; medians of {args.reps}; load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'variant':14} {'frames':>7} {'whole s':>8} {'in-proc s':>10} {'peak MiB':>9}")
    for name, m in (("with MIP+fusion", full), ("PET slices only", base)):
        print(f"{name:14} {m['frames']:7.0f} {m['wall']:8.2f} {m['seconds']:10.2f} "
              f"{m['peak_kb'] / 1024:9.0f}")
    print(f"MIP + fusion add {100 * (full['seconds'] / base['seconds'] - 1):.0f} % in-process, "
          f"{100 * (full['wall'] / base['wall'] - 1):.0f} % whole process "
          f"({full['frames'] - base['frames']:.0f} more frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
