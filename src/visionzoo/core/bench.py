"""Side-by-side timing of our implementation against a peer library's, in one process and one run.

A benchmark is a pair of zero-argument callables doing the same work on the same inputs. Both are
warmed up, then timed alternately (so drifting machine load hits both equally); we report medians and
the ratio ``peer_time / our_time`` (> 1 means we are faster).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch


@dataclass
class BenchResult:
    name: str
    ours_s: float  # median seconds per call
    peer_s: float
    ratio: float  # peer_s / ours_s: how many times faster we are
    target: float | None = None
    items_per_call: int = 1
    repeats: int = 0
    ours_all: list[float] = field(default_factory=list)
    peer_all: list[float] = field(default_factory=list)
    note: str = ""
    device: str = "cpu"

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio >= self.target

    def throughput(self) -> tuple[float, float]:
        return self.items_per_call / self.ours_s, self.items_per_call / self.peer_s


def _sync(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def compare(
    name: str,
    ours: Callable[[], object],
    peer: Callable[[], object],
    *,
    warmup: int = 2,
    repeats: int = 10,
    target: float | None = None,
    items_per_call: int = 1,
    device: str = "cpu",
    note: str = "",
) -> BenchResult:
    """Time ``ours`` against ``peer``; calls alternate so both see the same machine state."""
    for _ in range(warmup):
        ours()
        peer()
    _sync(device)
    ours_t, peer_t = [], []
    for _ in range(repeats):
        for fn, sink in ((ours, ours_t), (peer, peer_t)):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            sink.append(time.perf_counter() - t0)
    o, p = statistics.median(ours_t), statistics.median(peer_t)
    return BenchResult(
        name=name, ours_s=o, peer_s=p, ratio=p / o, target=target, items_per_call=items_per_call,
        repeats=repeats, ours_all=ours_t, peer_all=peer_t, note=note, device=device,
    )


def format_table(results: list[BenchResult]) -> str:
    """A markdown table of results (what the README and the CLI show)."""
    lines = [
        "| benchmark | ours (ms) | peer (ms) | ratio peer/ours | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        met = "-" if r.met is None else ("yes" if r.met else "**no**")
        target = "-" if r.target is None else f">= {r.target:g}x"
        lines.append(
            f"| {r.name} | {r.ours_s * 1e3:.2f} | {r.peer_s * 1e3:.2f} | {r.ratio:.2f}x | {target} | {met} |"
        )
    return "\n".join(lines)


def write_results(results: list[BenchResult], out_dir: str | Path, stem: str) -> Path:
    """Write ``<stem>.json`` (all timings) and ``<stem>.md`` (the table) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "results": [asdict(r) | {"met": r.met} for r in results],
    }
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=2))
    (out / f"{stem}.md").write_text(format_table(results) + "\n")
    return out / f"{stem}.json"
