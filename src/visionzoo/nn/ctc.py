"""CTC utilities: loss wrapper, greedy and prefix beam-search decoding, Viterbi forced alignment.

Shared by every CTC head (TwoStream-SLR's seven VisualHeads, the cross-lingual CSLR model) and by the
sign-dictionary builder that cuts continuous videos into isolated signs (sign_language spec §1b, §4b).

Conventions: ``log_probs`` are batch-first ``(B, T, V)`` log-softmax outputs; ``lengths`` are the valid
frame counts per sequence; ``blank`` is the CTC blank id (0 in SLRT's gloss vocabularies). Decoders return
plain Python lists of token ids with blanks removed and repeats collapsed.

Why our own decoder: the official code calls TensorFlow's ``ctc_beam_search_decoder`` and torchaudio does
not install beside our torch pin. The beam search below runs the whole batch in lock-step with numpy,
so the only Python loop is over frames, never over tokens or hypotheses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError, VisionZooError

__all__ = [
    "Alignment",
    "Hypothesis",
    "collapse_repeats",
    "ctc_loss",
    "forced_align",
    "greedy_decode",
    "prefix_beam_search",
]

NEG_INF = float("-inf")
# Prefix identity for the beam search: hash(prefix + [c]) = hash(prefix) * MUL + c + 1 in uint64 (wrapping).
# Two different prefixes of one utterance colliding has probability ~2**-64 per compared pair.
_ROOT_HASH = np.uint64(0x9E3779B97F4A7C15)  # the empty prefix
_NO_PARENT = np.uint64(1)  # parent hash of the empty prefix and of never-used slots
_HASH_MUL = np.uint64(0xBF58476D1CE4E5B9)  # odd, so the map is invertible modulo 2**64


@dataclass
class Hypothesis:
    tokens: list[int]  # label sequence, blanks removed, repeats collapsed
    score: float  # log P(tokens | x) summed over the alignments the beam kept (length-normalised if asked)


@dataclass
class Alignment:
    labels: list[int]  # (T,) best-path label per frame, blank included
    spans: list[tuple[int, int]]  # per target token: [start, end) frames it is emitted on, in target order
    score: float  # log prob of the best path (sum of per-frame log probs along it)
    token_scores: list[float] = field(default_factory=list)  # per target token: sum of its frames' log probs


def collapse_repeats(tokens: Sequence[int]) -> list[int]:
    """Merge runs of identical ids: [3, 3, 5, 3] -> [3, 5, 3] (the official ``groupby`` pass)."""
    return [k for k, _ in groupby(tokens)]


# ---------------------------------------------------------------------------------------------- checks

def _as_lengths(lengths, batch: int, frames: int, where: str) -> np.ndarray:
    # (B,) int64 frame counts, validated against the padded length T
    if lengths is None:
        return np.full(batch, frames, dtype=np.int64)
    out = torch.as_tensor(lengths).detach().cpu().numpy().astype(np.int64).reshape(-1)
    if out.shape[0] != batch:
        raise VisionZooError(f"{where}: lengths has {out.shape[0]} entries, expected one per batch item ({batch})")
    if (out < 0).any() or (out > frames).any():
        raise VisionZooError(f"{where}: lengths must lie in [0, {frames}] (the padded T), got {out.tolist()}")
    return out


def _check_log_probs(log_probs, ndim: int, where: str, blank: int):
    shape = "(B, T, V)" if ndim == 3 else "(T, V)"
    if log_probs.ndim != ndim:
        raise VisionZooError(f"{where}: log_probs must be {shape}, got shape {tuple(log_probs.shape)}")
    vocab = log_probs.shape[-1]
    if not 0 <= blank < vocab:
        raise ConfigError(f"{where}: blank={blank} is outside the vocabulary [0, {vocab})")


def _to_numpy(log_probs) -> np.ndarray:
    if isinstance(log_probs, torch.Tensor):
        return log_probs.detach().to("cpu", torch.float64).numpy()
    return np.asarray(log_probs, dtype=np.float64)


# ------------------------------------------------------------------------------------------------ loss

def ctc_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor | Sequence[Sequence[int]],
    input_lengths: torch.Tensor | Sequence[int] | None = None,
    target_lengths: torch.Tensor | Sequence[int] | None = None,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = True,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``F.ctc_loss`` for batch-first log-probs (B, T, V).

    ``targets`` is a padded (B, S) tensor with ``target_lengths``, or a list of B id sequences (lengths are
    then read off the list). ``reduction``: "none" | "sum" | "mean" (torch's: per-sample loss divided by its
    target length, then averaged) | "batchmean" (sum over the batch divided by B, as TwoStream-SLR trains).
    ``sample_weight`` (B,) scales each sample's loss before the reduction (the batch size B stays the divisor).
    """
    _check_log_probs(log_probs, 3, "ctc_loss", blank)
    if reduction not in ("none", "sum", "mean", "batchmean"):
        raise ConfigError(f"ctc_loss: reduction={reduction!r}; expected 'none', 'sum', 'mean' or 'batchmean'")
    B, T, _ = log_probs.shape
    device = log_probs.device
    if isinstance(targets, torch.Tensor):
        if target_lengths is None:
            if targets.ndim != 2:
                raise VisionZooError("ctc_loss: a 1-D concatenated targets tensor needs target_lengths")
            target_lengths = torch.full((B,), targets.shape[1], dtype=torch.long)
        flat = targets
    else:
        seqs = [torch.as_tensor(list(s), dtype=torch.long) for s in targets]
        if len(seqs) != B:
            raise VisionZooError(f"ctc_loss: got {len(seqs)} target sequences for a batch of {B}")
        if target_lengths is None:
            target_lengths = [len(s) for s in seqs]
        flat = torch.cat(seqs) if seqs else torch.zeros(0, dtype=torch.long)
    target_lengths = torch.as_tensor(target_lengths, dtype=torch.long)
    if input_lengths is None:
        input_lengths = torch.full((B,), T, dtype=torch.long)
    input_lengths = torch.as_tensor(input_lengths, dtype=torch.long)
    if sample_weight is not None and tuple(sample_weight.shape) != (B,):
        raise VisionZooError(f"ctc_loss: sample_weight of shape {tuple(sample_weight.shape)}; expected ({B},), "
                             "one weight per sentence")
    loss = F.ctc_loss(
        log_probs.transpose(0, 1),  # F.ctc_loss wants (T, B, V)
        flat.to(device),
        input_lengths,
        target_lengths,
        blank=blank,
        reduction="none" if reduction == "batchmean" or sample_weight is not None else reduction,
        zero_infinity=zero_infinity,
    )
    if sample_weight is not None:
        loss = loss * sample_weight.to(loss)
        if reduction == "mean":  # torch's mean: per-sample loss over its target length, then averaged
            return (loss / target_lengths.to(loss).clamp_min(1)).mean()
        if reduction == "sum":
            return loss.sum()
    return loss.sum() / B if reduction == "batchmean" else loss


# ---------------------------------------------------------------------------------------------- greedy

def greedy_decode(
    log_probs: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None, blank: int = 0
) -> list[list[int]]:
    """Best-path decoding: per-frame argmax, collapse repeats, drop blanks. (B, T, V) -> B id lists."""
    _check_log_probs(log_probs, 3, "greedy_decode", blank)
    B, T, _ = log_probs.shape
    lens = torch.as_tensor(_as_lengths(lengths, B, T, "greedy_decode"))
    best = torch.as_tensor(log_probs).argmax(-1).cpu()  # (B, T)
    prev = F.pad(best, (1, 0), value=-1)[:, :-1]
    keep = (best != blank) & (best != prev) & (torch.arange(T)[None, :] < lens[:, None])
    return [row[m].tolist() for row, m in zip(best, keep)]


# ----------------------------------------------------------------------------------------- beam search

def _frame_candidates(
    lp: np.ndarray, blank: int, top_k: int | None, token_min_logp: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-blank tokens a prefix may be extended with at each frame, best first.

    lp: (B, T, V) float32 or float64. Returns (B, T, C) ids and float64 log probs (pruned entries -inf) and
    (T,) the number of columns frame t needs (the most survivors of any batch item), so confident frames
    cost a C of 1 or 2, not V. As in pyctcdecode, a frame's arg-max token always survives the threshold.
    """
    B, T, V = lp.shape
    if token_min_logp is None:
        C = V - 1 if top_k is None else max(1, min(top_k, V - 1))
        vals, ids = torch.from_numpy(lp).topk(min(C + 1, V), dim=-1)  # one spare column: the blank is dropped
        vals = vals.masked_fill(ids == blank, NEG_INF)
        order = vals.argsort(dim=-1, descending=True, stable=True)[..., :C]  # the blank (now -inf) sinks last
        cand, cand_lp = ids.gather(-1, order).numpy(), vals.gather(-1, order).double().numpy()
        return cand, cand_lp, np.full(T, C)
    # Threshold: survivors are few (a trained head is confident), so find them directly with one
    # comparison pass instead of a top-k over the whole vocabulary.
    hit = lp >= token_min_logp
    hit[..., blank] = False
    best = lp.argmax(-1).reshape(-1)  # (B*T,)
    hit.reshape(B * T, V)[np.arange(B * T), best] |= best != blank
    flat = np.flatnonzero(hit)
    frame, token = np.divmod(flat, V)  # frame = b * T + t
    value = lp.reshape(-1)[flat].astype(np.float64)
    order = np.lexsort((-value, frame))  # by frame, best first
    frame, token, value = frame[order], token[order], value[order]
    count = np.bincount(frame, minlength=B * T)
    rank = np.arange(frame.size) - np.repeat(np.cumsum(count) - count, count)
    if top_k is not None:
        keep = rank < max(1, top_k)
        frame, token, value, rank = frame[keep], token[keep], value[keep], rank[keep]
        count = np.minimum(count, max(1, top_k))
    C = max(int(count.max(initial=0)), 1)
    cand = np.zeros((B * T, C), dtype=np.int64)
    cand_lp = np.full((B * T, C), NEG_INF)
    cand[frame, rank] = token
    cand_lp[frame, rank] = value
    width = np.maximum(count.reshape(B, T).max(0), 1)
    return cand.reshape(B, T, C), cand_lp.reshape(B, T, C), width


def prefix_beam_search(
    log_probs: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | Sequence[int] | None = None,
    beam_size: int = 5,
    blank: int = 0,
    length_norm: bool = False,
    collapse_twice: bool = False,
    top_k: int | None = None,
    token_min_logp: float | None = None,
) -> list[list[Hypothesis]]:
    """CTC prefix beam search over a batch. (B, T, V) log-probs -> per item, up to ``beam_size`` hypotheses.

    Every prefix keeps two log scores: ``p_b`` (all kept alignments ending in blank) and ``p_nb`` (ending in
    its last token); the hypothesis score is their log-sum. A repeated token extends the prefix only from
    ``p_b`` (a blank must separate two equal tokens); from ``p_nb`` it stays on the same prefix.

    ``top_k`` / ``token_min_logp`` prune the tokens tried as extensions at each frame (speed; staying on a
    prefix is always scored exactly). ``length_norm`` ranks and reports ``score / len(tokens)``.
    ``collapse_twice`` reproduces the official TwoStream-SLR decoder, which merges repeats once more after
    the beam search, so two genuine identical glosses in a row become one (spec §1b); scores are unchanged.
    """
    _check_log_probs(log_probs, 3, "prefix_beam_search", blank)
    if beam_size < 1:
        raise ConfigError(f"prefix_beam_search: beam_size={beam_size}; expected >= 1")
    lp = torch.as_tensor(log_probs).detach().cpu()  # (B, T, V); float64 stays float64, the rest go float32
    lp = lp if lp.dtype == torch.float64 else lp.float()
    B, T, V = lp.shape
    lens = _as_lengths(lengths, B, T, "prefix_beam_search")
    # Frames past an item's length become "certain blank": they change no prefix and add 0 to its score,
    # so the whole batch can step in lock-step without per-item bookkeeping.
    pad = torch.as_tensor(np.arange(T)[None, :] >= lens[:, None])
    if pad.any():
        lp = lp.masked_fill(pad[..., None], NEG_INF)
        lp[..., blank] = lp[..., blank].masked_fill(pad, 0.0)
    lp = lp.numpy()  # scores accumulate in float64 (sums over up to T frames)
    cand_all, cand_lp_all, width = _frame_candidates(lp, blank, top_k, token_min_logp)  # (B, T, C), (T,)
    K = beam_size
    blank_lp = lp[..., blank].astype(np.float64)  # (B, T)

    # Beam state of slot k of item b. A prefix is identified by a 64-bit hash of its ids (`prefix_hash`),
    # and `parent_hash` is the hash of the prefix without its last id: prefix k is the parent of k2 iff
    # parent_hash[k2] == prefix_hash[k], one (B, K, K) comparison instead of comparing id sequences.
    # The empty prefix has last = blank (its p_nb stays -inf, so "repeating" the blank adds nothing).
    last = np.full((B, K), blank, dtype=np.int64)
    prefix_hash = np.zeros((B, K), dtype=np.uint64)
    prefix_hash[:, 0] = _ROOT_HASH
    parent_hash = np.full((B, K), _NO_PARENT, dtype=np.uint64)
    p_b = np.full((B, K), NEG_INF)
    p_nb = np.full((B, K), NEG_INF)
    p_b[:, 0] = 0.0
    bi = np.arange(B)[:, None]
    bK = bi * K  # row offsets into flattened (B, K) state, so gathers are a single `take`
    history: list[tuple[np.ndarray, np.ndarray]] = []  # per frame: (source slot, appended id or -1)
    slot_of: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # C -> candidate index -> (source slot, column)
    extends = (cand_lp_all > NEG_INF).any(-1).any(0)  # (T,) can any item grow a prefix at frame t?
    parent = None  # (B, K, K2) bool, k is k2's parent; recomputed only after the beam changes

    for t in range(T):
        row = lp[:, t]  # (B, V)
        p_tot = np.logaddexp(p_b, p_nb)
        # 1) stay on the same prefix: emit blank, or repeat the last token
        last_lp = row[bi, last]  # (B, K)
        stay_b = p_tot + blank_lp[:, t, None]
        stay_nb = p_nb + last_lp
        # 2) an extension equal to another kept prefix k2 = k + [last(k2)] adds its mass to k2's p_nb
        #    (scored with the full frame row, so this merge is exact even for pruned tokens)
        if parent is None:
            parent = parent_hash[:, None, :] == prefix_hash[:, :, None]
            has_parent = parent.any(1)  # (B, K2); slots hold distinct prefixes: a k2 has at most one parent
            par = parent.argmax(1) + bK if has_parent.any() else None
        if par is not None:
            via = np.where(last.take(par) == last, p_b.take(par), p_tot.take(par))
            via += last_lp
            stay_nb = np.where(has_parent, np.logaddexp(stay_nb, via), stay_nb)
        if not extends[t]:
            # no item may grow a prefix here (a blank frame for every item): the prefixes and their slots
            # stay as they are, only the scores move, and the frame needs no selection and no history
            p_b, p_nb = stay_b, stay_nb
            continue
        # 3) extend prefix k by token c; after its own last token only the blank-ending mass may extend
        C = int(width[t])
        c = cand_all[:, t, :C]  # (B, C)
        same = c[:, None, :] == last[:, :, None]  # (B, K, C)
        ext = np.where(same, p_b[:, :, None], p_tot[:, :, None])
        ext += cand_lp_all[:, t, None, :C]
        if par is not None:
            ext[np.matmul(parent, same)] = NEG_INF  # (k, c) is the kept k2 = k + [c], merged above
        # 4) keep the best K of the K stays and K*C extensions. Ties at -inf keep index order, so empty slots
        #    are always refilled by stays, never by a masked duplicate extension: prefixes stay distinct.
        scores = np.concatenate([np.logaddexp(stay_b, stay_nb), ext.reshape(B, K * C)], 1)  # (B, K + K*C)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :K]  # (B, K)
        if C not in slot_of:
            slot_of[C] = (np.concatenate([np.arange(K), np.repeat(np.arange(K), C)]),
                          np.concatenate([np.full(K, -1), np.tile(np.arange(C), K)]))
        src, col = slot_of[C][0].take(top), slot_of[C][1].take(top)
        is_ext = col >= 0
        new_tok = np.where(is_ext, c[bi, col], -1)
        history.append((src, new_tok))
        src = src + bK  # flat index; history keeps the per-item slot
        src_hash = prefix_hash.take(src)
        prefix_hash = np.where(is_ext, src_hash * _HASH_MUL + (new_tok + 1).astype(np.uint64), src_hash)
        parent_hash = np.where(is_ext, src_hash, parent_hash.take(src))
        last = np.where(is_ext, new_tok, last.take(src))
        p_b = np.where(is_ext, NEG_INF, stay_b.take(src))
        p_nb = np.where(is_ext, scores[bi, top], stay_nb.take(src))
        parent = None

    # read each final hypothesis back through the (source slot, appended id) history of the changing frames
    tokens = np.full((B, K, len(history)), -1, dtype=np.int64)
    slot = np.broadcast_to(np.arange(K), (B, K))
    for i in range(len(history) - 1, -1, -1):
        src, new_tok = history[i]
        tokens[:, :, i] = new_tok[bi, slot]
        slot = src[bi, slot]
    return _finish(tokens, np.logaddexp(p_b, p_nb), length_norm, collapse_twice)


def _finish(
    tokens: np.ndarray, score: np.ndarray, length_norm: bool, collapse_twice: bool
) -> list[list[Hypothesis]]:
    # tokens: (B, K, T) appended id per frame or -1; score: (B, K)
    out = []
    for b in range(tokens.shape[0]):
        hyps = []
        for k in range(tokens.shape[1]):
            if not np.isfinite(score[b, k]):
                continue
            seq = tokens[b, k][tokens[b, k] >= 0].tolist()
            s = float(score[b, k])
            if length_norm:
                s /= max(len(seq), 1)
            hyps.append(Hypothesis(collapse_repeats(seq) if collapse_twice else seq, s))
        hyps.sort(key=lambda h: -h.score)
        out.append(hyps)
    return out


# ----------------------------------------------------------------------------------- forced alignment

def forced_align(log_probs: torch.Tensor | np.ndarray, target: Sequence[int], blank: int = 0) -> Alignment:
    """Viterbi best path of ``target`` through (T, V) log-probs (spec §4b, the dictionary builder).

    Runs over the blank-extended target (blank, y1, blank, y2, ..., blank) with the usual CTC moves: stay,
    advance one state, or skip the blank between two *different* tokens. Needs T >= len(target) + number of
    adjacent repeats (each repeat forces a blank frame in between).
    """
    _check_log_probs(log_probs, 2, "forced_align", blank)
    lp = _to_numpy(log_probs)  # (T, V)
    T, V = lp.shape
    y = np.asarray(list(target), dtype=np.int64)
    if y.size and ((y < 0).any() or (y >= V).any() or (y == blank).any()):
        raise VisionZooError(f"forced_align: target ids must be non-blank ids in [0, {V}), got {y.tolist()}")
    repeats = int((y[1:] == y[:-1]).sum()) if y.size > 1 else 0
    if T < y.size + repeats:
        raise VisionZooError(
            f"forced_align: target of {y.size} tokens with {repeats} adjacent repeats needs at least "
            f"{y.size + repeats} frames, got T={T}"
        )
    S = 2 * y.size + 1
    states = np.full(S, blank, dtype=np.int64)
    states[1::2] = y
    # skip move s-2 -> s allowed into a token state whose token differs from the token two states back
    can_skip = np.zeros(S, dtype=bool)
    can_skip[3::2] = y[1:] != y[:-1]
    emit = lp[:, states]  # (T, S)
    delta = np.full(S, NEG_INF)
    delta[: min(2, S)] = emit[0, : min(2, S)]
    back = np.zeros((T, S), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, T):
        moves = np.full((3, S), NEG_INF)  # candidate predecessors: stay, step from s-1, skip from s-2
        moves[0] = delta
        moves[1, 1:] = delta[:-1]
        moves[2, 2:] = np.where(can_skip[2:], delta[:-2], NEG_INF)
        back[t] = moves.argmax(0)
        delta = moves.max(0) + emit[t]
    # the path ends in the last token or the trailing blank
    s = S - 1 if S == 1 or delta[S - 1] >= delta[S - 2] else S - 2
    score = float(delta[s])
    path = np.empty(T, dtype=np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = s
        s -= int(back[t, s])
    labels = states[path]
    spans, token_scores = [], []
    frame_lp = lp[np.arange(T), labels]
    for i in range(y.size):
        frames = np.nonzero(path == 2 * i + 1)[0]
        spans.append((int(frames[0]), int(frames[-1]) + 1))
        token_scores.append(float(frame_lp[frames].sum()))
    return Alignment(labels=labels.tolist(), spans=spans, score=score, token_scores=token_scores)
