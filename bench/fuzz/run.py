"""The fuzzing loop: hypothesis draws mutation programs (seeded, reproducible), each input
goes over a real socket to `radraft serve`, and every answer is classified and counted."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from bench.fuzz import dicom_ul as ul
from bench.fuzz import mutate_dicom, mutate_hl7
from bench.fuzz.corpus import dicom_samples, hl7_samples, regression_seeds
from bench.fuzz.target import Target, hl7_exchange

HANG_S = 10.0
MEMORY_LIMIT = 200 << 20
PROBE_EVERY = 100


@dataclass
class Report:
    seed: int
    answers: dict[str, Counter[str]] = field(default_factory=lambda: {
        "dicom": Counter(), "hl7": Counter()})
    inputs: Counter[str] = field(default_factory=Counter)
    findings: list[dict[str, Any]] = field(default_factory=list)
    crashes: int = 0
    hangs: int = 0
    unresponsive: int = 0
    seconds: float = 0.0
    memory_growth_mb: float = 0.0
    files_outside: list[str] = field(default_factory=list)
    log_injections: int = 0
    server_tracebacks: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "seconds": round(self.seconds, 1),
            "inputs": dict(self.inputs),
            "answers": {k: dict(v.most_common()) for k, v in self.answers.items()},
            "crashes": self.crashes, "hangs": self.hangs, "unresponsive": self.unresponsive,
            "memory_growth_mb": round(self.memory_growth_mb, 1),
            "files_outside_data_dir": self.files_outside,
            "log_injections": self.log_injections,
            "server_tracebacks": self.server_tracebacks,
            "findings": self.findings,
        }

    @property
    def clean(self) -> bool:
        return not (self.crashes or self.hangs or self.unresponsive or self.files_outside
                    or self.log_injections or self.memory_growth_mb * (1 << 20) > MEMORY_LIMIT)


class Fuzzer:
    def __init__(self, target: Target, report: Report, findings: Path, *,
                 max_bombs: int, max_stalls: int, deadline: float) -> None:
        self.target, self.report, self.findings = target, report, findings
        self.max_bombs, self.max_stalls, self.deadline = max_bombs, max_stalls, deadline
        self.bombs = self.stalls = 0
        self.samples = dicom_samples()
        self.messages = hl7_samples()

    # --- one input -------------------------------------------------------------------------
    def _record(self, kind: str, what: str, label: str, stream: bytes) -> None:
        self.findings.mkdir(parents=True, exist_ok=True)
        path = self.findings / f"{kind}-{len(self.report.findings):04d}-{what}.bin"
        path.write_bytes(stream)
        self.report.findings.append({"kind": kind, "what": what, "input": label,
                                     "stream": str(path)})

    def _after(self, kind: str, answer: str, label: str, stream: bytes) -> None:
        self.report.inputs[kind] += 1
        self.report.answers[kind][answer] += 1
        hung = "hang" in answer
        if hung:
            self.report.hangs += 1
            self._record(kind, "hang", label, stream)
        if not self.target.alive():
            self.report.crashes += 1
            self._record(kind, "crash", label, stream)
            self.target.restart()
        elif self.target.memory_growth() > MEMORY_LIMIT:
            self._record(kind, "memory", label, stream)
            self.report.memory_growth_mb = max(self.report.memory_growth_mb,
                                               self.target.memory_growth() / (1 << 20))
            self.target.restart()  # a fresh baseline for the inputs that follow
        elif hung:
            self.target.restart()  # what the hung input holds is not charged to the next
        total = sum(self.report.inputs.values())
        if total % PROBE_EVERY == 0 and not self.target.responsive():
            print(f"unresponsive after {label}: {self.target.last_probe}", flush=True)
            self.report.unresponsive += 1
            self._record(kind, "unresponsive", label, stream)
            self.target.restart()

    def send_dicom(self, stream: bytes, half_close: bool, label: str) -> None:
        try:
            answer = ul.exchange(self.target.dicom_port, stream, wait_s=HANG_S,
                                 half_close=half_close).classify()
        except OSError as exc:
            answer = f"connect-error-{type(exc).__name__}"
        self._after("dicom", answer, label, stream)

    def send_hl7(self, stream: bytes, label: str) -> None:
        try:
            body, ended = hl7_exchange(self.target.hl7_port, stream, HANG_S)
            answer = mutate_hl7.classify(body, ended)
        except OSError as exc:
            answer = f"connect-error-{type(exc).__name__}"
        self._after("hl7", answer, label, stream)

    # --- the corpora -----------------------------------------------------------------------
    def seeds(self) -> None:
        for name, stream in regression_seeds("dicom"):
            self.send_dicom(stream, False, f"seed:{name}")
        for name, stream in regression_seeds("hl7"):
            self.send_hl7(stream, f"seed:{name}")

    def _dicom_ops(self, ops: list[tuple[str, int]]) -> list[tuple[str, int]]:
        kept = []
        for name, value in ops:
            if name == "bomb":
                if self.bombs >= self.max_bombs:
                    continue
                self.bombs += 1
            if name == "stall":
                if self.stalls >= self.max_stalls:
                    continue
                self.stalls += 1
            kept.append((name, value))
        return kept or [("flip", ops[0][1] if ops else 0)]

    def dicom(self, count: int, seed_value: int) -> None:
        names = [n for n, w in mutate_dicom.OP_WEIGHTS.items() for _ in range(w)]
        op = st.tuples(st.sampled_from(names), st.integers(0, 2**32 - 1))
        strategy = st.tuples(st.integers(0, len(self.samples) - 1),
                             st.lists(op, min_size=1, max_size=3))

        @settings(max_examples=count, database=None, deadline=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck),
                  verbosity=Verbosity.quiet)
        @given(strategy)
        def one(case: tuple[int, list[tuple[str, int]]]) -> None:
            if time.monotonic() > self.deadline:
                return
            index, ops = case
            try:
                built = mutate_dicom.build_case(self.samples[index], self._dicom_ops(ops))
            except Exception as exc:  # noqa: BLE001 - a fuzzer bug, counted, never fatal
                self.report.answers["dicom"][f"driver-error-{type(exc).__name__}"] += 1
                return
            self.send_dicom(built.stream, built.half_close,
                            f"{self.samples[index].name}:{ops}")

        hypothesis_seed(seed_value)(one)()

    def hl7(self, count: int, seed_value: int) -> None:
        op = st.tuples(st.sampled_from(sorted(mutate_hl7.MESSAGE_OPS)),
                       st.integers(0, 2**32 - 1))
        strategy = st.tuples(st.integers(0, len(self.messages) - 1),
                             st.lists(op, min_size=0, max_size=3),
                             st.integers(0, 2**16))

        @settings(max_examples=count, database=None, deadline=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck),
                  verbosity=Verbosity.quiet)
        @given(strategy)
        def one(case: tuple[int, list[tuple[str, int]], int]) -> None:
            if time.monotonic() > self.deadline:
                return
            index, ops, framing = case
            try:
                built = mutate_hl7.build_case(self.messages[index], ops, framing,
                                              self.target.max_batch)
            except Exception as exc:  # noqa: BLE001 - a fuzzer bug, counted, never fatal
                self.report.answers["hl7"][f"driver-error-{type(exc).__name__}"] += 1
                return
            self.send_hl7(built.stream, f"{index}:{built.label}:{ops}:{framing}")

        hypothesis_seed(seed_value)(one)()


def fuzz(folder: Path, *, dicom: int, hl7: int, seed_value: int, minutes: float,
         max_bombs: int = 3, max_stalls: int = 20) -> Report:
    """Run the whole campaign against a fresh `radraft serve` in `folder`."""
    report = Report(seed_value)
    start = time.monotonic()
    target = Target(folder)
    target.start()
    fuzzer = Fuzzer(target, report, folder / "findings", max_bombs=max_bombs,
                    max_stalls=max_stalls, deadline=start + minutes * 60)
    try:
        fuzzer.seeds()
        fuzzer.hl7(hl7, seed_value)  # the faster door first: a time bound cuts DICOM short
        fuzzer.dicom(dicom, seed_value)
        if not target.responsive():
            report.unresponsive += 1
        report.memory_growth_mb = max(report.memory_growth_mb,
                                      target.memory_growth() / (1 << 20))
    finally:
        target.close()
    report.files_outside = target.files_outside()
    report.log_injections = len(target.log_injections())
    report.server_tracebacks = target.tracebacks()
    report.seconds = time.monotonic() - start
    return report
