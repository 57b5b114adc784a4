"""`python -m bench.fuzz [--dicom N] [--hl7 N] [--seed S] [--minutes M] [--out DIR]`

Prints the answer classes and the findings (crashes, hangs over 10 s, memory growth over
200 MB, files outside data_dir, injected log lines) and writes summary.json; exit status 1
when there is any finding.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path

from bench.fuzz.run import fuzz

DRIVER_ADDRESS_SPACE = 4 << 30


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("--dicom", type=int, default=10_000, help="DICOM inputs (10,000)")
    parser.add_argument("--hl7", type=int, default=10_000, help="HL7 inputs (10,000)")
    parser.add_argument("--seed", type=int, default=25, help="hypothesis seed (25)")
    parser.add_argument("--minutes", type=float, default=120.0,
                        help="time bound for the whole run (120)")
    parser.add_argument("--max-bombs", type=int, default=3,
                        help="deflate bombs (each up to 300 MiB inflated) at most")
    parser.add_argument("--max-stalls", type=int, default=20,
                        help="stalled connections (each costs a server timeout) at most")
    parser.add_argument("--out", type=Path, default=None,
                        help="run folder (default: a new temporary one)")
    args = parser.parse_args()
    # The driver builds every input in memory: a bug there must not take the machine.
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (DRIVER_ADDRESS_SPACE, hard))
    folder = args.out or Path(tempfile.mkdtemp(prefix="radraft-fuzz-"))
    report = fuzz(folder, dicom=args.dicom, hl7=args.hl7, seed_value=args.seed,
                  minutes=args.minutes, max_bombs=args.max_bombs, max_stalls=args.max_stalls)
    summary = report.as_json()
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "findings"}, indent=2))
    for finding in report.findings:
        print(f"FINDING {finding['kind']} {finding['what']}: {finding['input'][:160]} "
              f"-> {finding['stream']}")
    print(f"run folder: {folder} ({'clean' if report.clean else 'FINDINGS'})")
    sys.exit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
