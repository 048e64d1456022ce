"""Corpus WER: ours (batched numpy DP + backtrace, S/D/I counts) vs jiwer (rapidfuzz C++ Levenshtein).

Setup: Phoenix-2014-test-sized corpora (629 sentences, 3-19 glosses from a 1,000-gloss vocabulary; and a
CSL-Daily-test-sized one, 1,176 sentences up to 30 glosses). Both score the same strings with unit
costs (so both do the same job and must agree on the WER; the benchmark raises if they do not), no
cleanup. A third row times our sclite-cost (4/3/3) scorer, the one the papers use, against the same
jiwer call for scale: jiwer cannot score with those costs.
"""

from __future__ import annotations

import numpy as np

from visionzoo.core.bench import BenchResult, compare, format_table, write_results
from visionzoo.metrics.wer import SCLITE_COSTS, UNIT_COSTS, wer


def corpus(sentences: int, max_len: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    vocab = [f"G{i}" for i in range(1000)]
    refs = [list(rng.choice(vocab, rng.integers(3, max_len))) for _ in range(sentences)]
    hyps = []
    for r in refs:  # a decent recogniser: most glosses right, some substituted, dropped or inserted
        h = [g if rng.random() > 0.2 else vocab[rng.integers(1000)] for g in r if rng.random() > 0.1]
        h += list(rng.choice(vocab, rng.integers(0, 2)))
        hyps.append(h)
    return [" ".join(r) for r in refs], [" ".join(h) for h in hyps]


def run(quick: bool = False) -> list[BenchResult]:
    import jiwer

    repeats = 5 if quick else 20
    results = []
    for name, (n, max_len), costs in (("wer_p14_test_unit", (629, 20), UNIT_COSTS),
                                      ("wer_csl_test_unit", (1176, 31), UNIT_COSTS),
                                      ("wer_p14_test_sclite_vs_jiwer_unit", (629, 20), SCLITE_COSTS)):
        refs, hyps = corpus(n, max_len)
        if costs is UNIT_COSTS:
            ours_wer, theirs = wer(refs, hyps, costs=costs).wer, 100 * jiwer.process_words(refs, hyps).wer
            if abs(ours_wer - theirs) > 1e-9:
                raise AssertionError(f"{name}: WER {ours_wer} != jiwer {theirs}")
        results.append(compare(name, lambda: wer(refs, hyps, costs=costs), lambda: jiwer.process_words(refs, hyps),
                               warmup=2, repeats=repeats, items_per_call=n,
                               note="same strings; jiwer has unit costs only" if costs is SCLITE_COSTS else ""))
    return results


if __name__ == "__main__":
    results = run()
    print(format_table(results))
    write_results(results, "benchmarks/results", "sign_metrics")
