"""Sign video <-> text retrieval: R@1/5/10, median and mean rank, with several clips per sentence (CiCo §3c).

Inputs: a similarity matrix ``sim`` (N_text, N_clips), one row per *unique* sentence, and
``clip_to_text`` (N_clips,), the row index of each clip's sentence (How2Sign test: 1,969 sentences,
2,348 clips).
- **T2V**: queries are the sentences. A sentence's score for candidate sentence s is the *max* similarity
  over s's clips; the query's rank is the position of its own sentence among all N_text candidates.
- **V2T**: queries are the clips; the rank is the position of the clip's sentence among all sentences.
- **R@K** = percent of queries with rank < K (ranks are 0-based); **MedR** = median rank + 1;
  **MnR** = mean rank + 1.

Ties are broken deterministically. ``ties="pessimistic"`` (default): every other candidate scoring
*at least* as high as the correct one ranks above it, so a constant similarity matrix gets R@1 = 0
rather than a lucky 100. ``ties="optimistic"``: only strictly higher candidates count, which equals
the official ``compute_metrics`` (first position of the correct score in the sorted row).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from visionzoo.core.errors import VisionZooError


def _ranks(scores: torch.Tensor, correct: torch.Tensor, ties: str) -> torch.Tensor:
    """(Q, K) candidate scores and (Q,) index of the right candidate -> (Q,) 0-based ranks."""
    target = scores.gather(1, correct[:, None])  # (Q, 1)
    if ties == "pessimistic":
        return (scores >= target).sum(1) - 1
    if ties == "optimistic":
        return (scores > target).sum(1)
    raise VisionZooError(f"unknown tie rule {ties!r}: expected 'pessimistic' or 'optimistic'")


def rank_metrics(ranks: torch.Tensor, ks: Sequence[int] = (1, 5, 10), prefix: str = "") -> dict[str, float]:
    """R@K (percent), MedR and MnR (1-based) of 0-based ranks."""
    r = ranks.double().numpy()
    out = {f"{prefix}r{k}": 100.0 * float((r < k).mean()) for k in ks}
    out[f"{prefix}medr"] = float(np.median(r)) + 1.0
    out[f"{prefix}mnr"] = float(r.mean()) + 1.0
    return out


def sentence_scores(sim: torch.Tensor, clip_to_text: torch.Tensor) -> torch.Tensor:
    """(N_text, N_clips) -> (N_text, N_text): each candidate sentence scored by its best clip."""
    n_text = sim.shape[0]
    out = torch.full((n_text, n_text), -torch.inf, dtype=sim.dtype)
    return out.scatter_reduce_(1, clip_to_text[None].expand(n_text, -1), sim, reduce="amax")


def retrieval_metrics(sim, clip_to_text, *, ks: Sequence[int] = (1, 5, 10),
                      ties: str = "pessimistic") -> dict[str, float]:
    """{"t2v_r1", ..., "t2v_medr", "t2v_mnr", "v2t_r1", ..., "v2t_mnr"} for sim (N_text, N_clips)."""
    sim = torch.as_tensor(np.asarray(sim), dtype=torch.float64)
    clip_to_text = torch.as_tensor(np.asarray(clip_to_text)).long()
    if sim.ndim != 2 or clip_to_text.shape != (sim.shape[1],):
        raise VisionZooError(f"retrieval expects sim (N_text, N_clips) and clip_to_text (N_clips,), got "
                             f"{tuple(sim.shape)} and {tuple(clip_to_text.shape)}")
    if not torch.isfinite(sim).all():
        raise VisionZooError("retrieval similarity matrix holds NaN or inf values")
    n_text = sim.shape[0]
    if clip_to_text.numel() and (clip_to_text.min() < 0 or clip_to_text.max() >= n_text):
        raise VisionZooError(f"clip_to_text must index the {n_text} sentences (0..{n_text - 1})")
    without_clip = torch.ones(n_text, dtype=torch.bool).index_fill_(0, clip_to_text, False)
    if without_clip.any():
        first = int(without_clip.nonzero()[0])
        raise VisionZooError(f"{int(without_clip.sum())} sentences have no clip (first: row {first}); "
                             "every sentence needs at least one clip")
    t2v = _ranks(sentence_scores(sim, clip_to_text), torch.arange(n_text), ties)  # (N_text,)
    v2t = _ranks(sim.t(), clip_to_text, ties)  # (N_clips,)
    return rank_metrics(t2v, ks, "t2v_") | rank_metrics(v2t, ks, "v2t_")
