"""What a scenario found, printed as it comes: problems (any one fails the
run) and figures (what it measured), with the time since the run started."""

from __future__ import annotations

import time


class Verdict:
    def __init__(self, label: str = ""):
        self.t0 = time.monotonic()
        self.label = label  # which run, where several share one output (the matrix)
        self.problems: list[str] = []
        self.figures: dict[str, object] = {}

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)
            print(f"   {f'[{self.label}] ' if self.label else ''}FAIL {problem}", flush=True)

    def step(self, text: str) -> None:
        label = f"{self.label} " if self.label else ""
        print(f"-- [{label}{time.monotonic() - self.t0:6.1f}s] {text}", flush=True)

    def figure(self, key: str, value: object) -> None:
        self.figures[key] = value
        print(f"   {key}: {value}", flush=True)
