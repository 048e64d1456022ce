"""Helpers shared by the methods' CPU proxy experiments (arms x seeds -> mean and sd per metric)."""

from __future__ import annotations

import statistics

NOT_METRICS = ("arm", "seed", "seconds")


def summarize(rows: list[dict], metrics: list[str] | None = None, skip_arms: tuple[str, ...] = ()) -> dict:
    """``{arm: {metric: (mean, sd)}}`` over the seeds of each arm, arms in first-seen order.

    ``metrics`` defaults to every numeric key of the rows except the run's arm, seed and wall time.
    """
    out: dict = {}
    for arm in dict.fromkeys(r["arm"] for r in rows if r["arm"] not in skip_arms):
        arm_rows = [r for r in rows if r["arm"] == arm]
        keys = metrics or [k for k, v in arm_rows[0].items()
                           if k not in NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)]
        for key in keys:
            vals = [r[key] for r in arm_rows if key in r]
            if vals:
                out.setdefault(arm, {})[key] = (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
    return out
