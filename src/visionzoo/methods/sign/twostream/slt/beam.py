"""Multi-source ensemble beam search (TwoStream-SLT's decoding, spec §1b step 4).

Every source is one translation network with its own encoder input (the rgb, keypoint and joint Sign2Text
networks each read their own features). At every step each network's decoder scores the running prefixes
and the ensemble's next-token distribution is the **average of their probabilities**,
``log(mean_i softmax_i)`` (computed as ``logsumexp_i(log_softmax_i) - log N``). Averaging rather than
summing keeps a single network's scores unchanged: with N copies of one network the ensemble decodes
exactly as that network, and a constant ``log N`` per token would otherwise interact with the length
penalty.

The search follows transformers' beam search with ``early_stopping=True`` (mbart-large-cc25's generation
setting): 2*beam candidates per step; a candidate ending in ``</s>`` among the top ``beam`` is a finished
hypothesis scored ``sum log p / generated_length ** length_penalty`` (generated_length counts ``</s>``); the
search stops once ``beam`` hypotheses are finished or the sequence reaches ``max_length`` tokens (the
decoder start token included), where the best running beams are finished as they are. The tests check it
against ``MBartForConditionalGeneration.generate`` for one network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass
class Source:
    """One network's view of a batch: its translator and encoder input (B, S, d) with mask (B, S)."""

    translator: object  # slt.model.Translator
    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor


def ensemble_log_probs(per_model: Sequence[torch.Tensor]) -> torch.Tensor:
    """log of the mean of the models' probabilities; (N, V) log-probs each -> (N, V)."""
    if len(per_model) == 1:
        return per_model[0]
    stacked = torch.stack(list(per_model))
    return torch.logsumexp(stacked, dim=0) - math.log(len(per_model))


@torch.no_grad()
def ensemble_beam_search(sources: Sequence[Source], *, start_id: int, eos_id: int, beam_size: int = 5,
                         length_penalty: float = 1.0, max_length: int = 100) -> list[list[int]]:
    """Best hypothesis (token ids after the start token, without ``</s>``) for every item of the batch."""
    if not sources:
        raise ValueError("ensemble_beam_search: need at least one source")
    batch = sources[0].inputs_embeds.shape[0]
    if any(s.inputs_embeds.shape[0] != batch for s in sources):
        raise ValueError("ensemble_beam_search: every source needs the same batch size")
    encoded = [(s.translator, s.translator.encode(s.inputs_embeds, s.attention_mask), s.attention_mask)
               for s in sources]
    results = []
    for b in range(batch):
        item = [(t, enc[b : b + 1], mask[b : b + 1]) for t, enc, mask in encoded]
        results.append(_search_one(item, start_id, eos_id, beam_size, length_penalty, max_length))
    return results


def _search_one(models, start_id: int, eos_id: int, beam_size: int, length_penalty: float,
                max_length: int) -> list[int]:
    device = models[0][1].device
    running = torch.full((1, 1), start_id, dtype=torch.long, device=device)  # (beams, t)
    scores = torch.zeros(1, device=device)
    finished: list[tuple[float, list[int]]] = []
    while True:
        n = running.shape[0]
        log_probs = ensemble_log_probs([
            t.next_token_log_probs(running, enc.expand(n, -1, -1), mask.expand(n, -1)) for t, enc, mask in models
        ])  # (n, V)
        vocab = log_probs.shape[-1]
        candidates = (scores[:, None] + log_probs).flatten()
        top_scores, top_idx = candidates.topk(min(2 * beam_size, candidates.numel()))
        generated = running.shape[1]  # length of the sequences after this step, minus the start token
        last_step = running.shape[1] + 1 >= max_length
        next_beams, next_scores = [], []
        for rank, (score, idx) in enumerate(zip(top_scores.tolist(), top_idx.tolist())):
            beam, token = divmod(idx, vocab)
            if token == eos_id or last_step:
                if rank < beam_size:
                    tokens = running[beam, 1:].tolist() + ([] if token == eos_id else [token])
                    finished.append((score / generated ** length_penalty, tokens))
                continue
            if len(next_beams) < beam_size:
                next_beams.append(torch.cat([running[beam], running.new_tensor([token])]))
                next_scores.append(score)
        finished.sort(key=lambda f: -f[0])
        finished = finished[:beam_size]
        if last_step or len(finished) >= beam_size or not next_beams:
            return finished[0][1] if finished else []
        running = torch.stack(next_beams)
        scores = torch.tensor(next_scores, device=device)
