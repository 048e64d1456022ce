"""CTC prefix beam search: ours (batched numpy) vs pyctcdecode (no LM), beam 5, on gloss-like posteriors.

Setup: 16 utterances x T=100 frames x V=1000 classes (a Phoenix-sized gloss vocabulary, blank = 0), the
posteriors of a trained CTC head: mostly blank, each gloss peaking for a few frames, with a confusable
runner-up gloss. Both decoders get the same log-probs and the same token pruning (a token is tried as an
extension if its log prob >= -5 or it is the frame's arg-max: pyctcdecode's default ``token_min_logp``).
pyctcdecode merges hypotheses in text space, so every class gets a one-character label and the blank "".
The top hypotheses of the two must be identical; the benchmark raises if they are not.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from visionzoo.core.bench import BenchResult, compare, format_table, write_results
from visionzoo.nn.ctc import ctc_loss, prefix_beam_search

BATCH, FRAMES, VOCAB, BEAM, TOKEN_MIN_LOGP = 16, 100, 1000, 5, -5.0


def gloss_like_log_probs(
    batch: int, frames: int, vocab: int, seed: int = 0, peak: float = 16.0, rival_peak: float = 12.5
) -> torch.Tensor:
    """(B, T, V) log-probs shaped like a trained CTC head's: blank-dominated, short confident gloss peaks."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, frames, vocab, generator=g)
    logits[..., 0] += 12.0  # blank wins most frames
    for b in range(batch):
        t = int(torch.randint(0, 4, (1,), generator=g))
        while t < frames:
            gloss, rival = torch.randint(1, vocab, (2,), generator=g).tolist()
            width = int(torch.randint(1, 4, (1,), generator=g))
            logits[b, t : t + width, gloss] += peak
            logits[b, t : t + width, rival] += rival_peak  # a confusable gloss keeps the beam busy
            t += width + int(torch.randint(2, 10, (1,), generator=g))
    return logits.log_softmax(-1)


def _labels(vocab: int) -> list[str]:
    # one distinct non-space character per class (CJK block), blank first as ""
    return [""] + [chr(0x4E00 + i) for i in range(vocab - 1)]


def _disagreement_on_blurry_posteriors(decoder, char_to_id: dict[str, int], batch: int) -> str:
    """Not timed: where close rivals make beam pruning matter, the two approximate searches can part.

    pyctcdecode also prunes the blank/repeat continuation of a prefix when that token is below
    ``token_min_logp``; we always score it. The exact CTC log-likelihood (``ctc_loss``) says who was right.
    """
    lp = gloss_like_log_probs(batch, FRAMES, VOCAB, seed=1, peak=14.0, rival_peak=13.0)
    ours = prefix_beam_search(lp, beam_size=BEAM, token_min_logp=TOKEN_MIN_LOGP)
    differ = ours_better = 0
    for b in range(batch):
        beams = decoder.decode_beams(
            lp[b].numpy(), beam_width=BEAM, token_min_logp=TOKEN_MIN_LOGP, beam_prune_logp=-1e9
        )
        theirs = [char_to_id[ch] for ch in beams[0][0]]
        if theirs != ours[b][0].tokens:
            differ += 1
            item = lp[b : b + 1].double()
            exact = [-ctc_loss(item, [y], reduction="sum").item() for y in (ours[b][0].tokens, theirs)]
            ours_better += exact[0] >= exact[1]
    return (
        f"on blurrier posteriors (max prob {lp.exp().amax(-1).mean():.2f}) "
        f"top hypotheses differ on {differ}/{batch}, "
        f"ours has the higher exact CTC likelihood on {ours_better} of those"
    )


def _pair(decoder, char_to_id: dict[str, int], batch: int):
    """(ours, peer, mean gloss count) on one batch; raises unless the top hypotheses are identical."""
    lp = gloss_like_log_probs(batch, FRAMES, VOCAB)
    utterances = [u.numpy() for u in lp]

    def ours():
        return prefix_beam_search(lp, beam_size=BEAM, blank=0, token_min_logp=TOKEN_MIN_LOGP)

    def peer():
        return [
            decoder.decode_beams(u, beam_width=BEAM, token_min_logp=TOKEN_MIN_LOGP, beam_prune_logp=-1e9)
            for u in utterances
        ]

    ours_top = [hyps[0].tokens for hyps in ours()]
    peer_top = [[char_to_id[ch] for ch in beams[0][0]] for beams in peer()]
    mismatches = sum(a != b for a, b in zip(ours_top, peer_top))
    if mismatches:
        raise AssertionError(f"ctc_beam: {mismatches}/{batch} top hypotheses differ from pyctcdecode's")
    return ours, peer, float(np.mean([len(t) for t in ours_top]))


def run(quick: bool = False) -> list[BenchResult]:
    from pyctcdecode import build_ctcdecoder

    logging.getLogger("pyctcdecode").setLevel(logging.ERROR)  # it warns about the missing space token
    labels = _labels(VOCAB)
    decoder = build_ctcdecoder(labels)
    char_to_id = {c: i for i, c in enumerate(labels)}
    batch = BATCH  # quick mode only times fewer repeats of the same config
    common = f"token_min_logp={TOKEN_MIN_LOGP} in both; pyctcdecode without LM, beam_prune_logp disabled"

    ours, peer, mean_len = _pair(decoder, char_to_id, batch)
    blurry = _disagreement_on_blurry_posteriors(decoder, char_to_id, batch)
    batched = compare(
        f"ctc prefix beam search B={batch} T={FRAMES} V={VOCAB} beam={BEAM}",
        ours,
        peer,
        warmup=1,
        repeats=3 if quick else 10,
        target=3.0,
        items_per_call=batch,
        note=f"top hypotheses identical on {batch}/{batch} utterances (mean {mean_len:.1f} glosses); "
        f"{common}; {blurry}",
    )
    ours, peer, _ = _pair(decoder, char_to_id, 1)
    single = compare(
        f"ctc prefix beam search B=1 T={FRAMES} V={VOCAB} beam={BEAM} (latency, no target)",
        ours,
        peer,
        warmup=1,
        repeats=3 if quick else 10,
        items_per_call=1,
        note=f"one utterance: frames where no token clears the threshold skip the selection step; {common}",
    )
    return [batched, single]


if __name__ == "__main__":
    results = run()
    print(format_table(results))
    for r in results:
        print(r.note)
    write_results(results, "benchmarks/results", "ctc_beam")
