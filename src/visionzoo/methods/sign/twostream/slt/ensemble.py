"""Multi-source ensemble of Sign2Text networks (TwoStream-SLT's final translation, spec §1b step 4).

    python -m visionzoo.methods.sign.twostream.slt.ensemble --slt RUN_RGB RUN_KP RUN_JOINT \
        --features FEATURE_DIR --split test --out ensemble.json

Every network reads its own stream of the feature folder; the decoders are combined at every beam step
(``beam.ensemble_beam_search``). Prints and writes BLEU-1..4 / ROUGE-L of each network alone and of the
ensemble.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from visionzoo.core.errors import ConfigError
from visionzoo.methods.sign.twostream.slt.beam import Source, ensemble_beam_search


def load_s2t(path: str | Path):
    """A Sign2Text network from a run folder (RUN/model) or a pretrained folder."""
    from visionzoo.core.hub import from_pretrained

    path = Path(path)
    model = from_pretrained(path / "model" if (path / "model").is_dir() else path)
    if not hasattr(model, "visual_head"):
        raise ConfigError(f"{path}: not a Sign2Text network (model {getattr(model, 'visionzoo_name', '?')!r})")
    return model.eval()


def check_compatible(models: Sequence) -> None:
    """The ensemble averages token distributions: every network must share one target vocabulary."""
    first = models[0].tokenizer_config
    for m in models[1:]:
        if m.tokenizer_config != first:
            raise ConfigError("ensemble: the Sign2Text networks have different text tokenizers; train them all "
                              "from the same Gloss2Text run")


@torch.no_grad()
def ensemble_translate(models: Sequence, features: Sequence[tuple[torch.Tensor, torch.Tensor]], beam_size: int = 5,
                       length_penalty: float = 1.0, max_length: int = 100) -> list[str]:
    """One translation per batch item; ``features[i]`` = (padded (B, T, C_i), lengths (B,)) for ``models[i]``."""
    check_compatible(models)
    sources = [Source(m.translator, *m.source(x, n)) for m, (x, n) in zip(models, features)]
    tok = models[0].tokenizer
    ids = ensemble_beam_search(sources, start_id=tok.decoder_start_id, eos_id=tok.eos_id, beam_size=beam_size,
                               length_penalty=length_penalty, max_length=max_length)
    return [tok.decode(i) for i in ids]


def evaluate_ensemble(runs: Sequence[str | Path], features: str | Path, split: str = "test", beam_size: int = 5,
                      length_penalty: float = 1.0, max_length: int = 100, level: str = "word",
                      batch_size: int = 16, singles: bool = True) -> dict[str, dict[str, float]]:
    """Metrics of each network alone (keyed by its stream) and of the ensemble of all of them."""
    from visionzoo.data.sign.datasets import pad_sequences
    from visionzoo.methods.sign.twostream.slt.features import FeatureSplit
    from visionzoo.metrics.translation import translation_metrics

    models = [load_s2t(r) for r in runs]
    check_compatible(models)
    sets = [FeatureSplit(features, split, m.stream) for m in models]
    refs = [s["text"] for s in sets[0].samples]
    arms = {m.stream: [i] for i, m in enumerate(models)} if singles else {}
    arms["ensemble"] = list(range(len(models)))
    hyps: dict[str, list[str]] = {arm: [] for arm in arms}
    for start in range(0, len(refs), batch_size):
        idx = range(start, min(start + batch_size, len(refs)))
        feats = [pad_sequences([s.features[i] for i in idx]) for s in sets]
        for arm, members in arms.items():
            hyps[arm] += ensemble_translate([models[i] for i in members], [feats[i] for i in members], beam_size,
                                            length_penalty, max_length)
    return {arm: {k: round(float(v), 4) for k, v in translation_metrics(refs, h, level=level).items()}
            for arm, h in hyps.items()}


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slt", nargs="+", required=True, help="Sign2Text run folders (one per stream)")
    p.add_argument("--features", required=True, help="feature folder (features.py)")
    p.add_argument("--split", default="test")
    p.add_argument("--beam-size", type=int, default=5, dest="beam_size")
    p.add_argument("--length-penalty", type=float, default=1.0, dest="length_penalty")
    p.add_argument("--max-length", type=int, default=100, dest="max_length")
    p.add_argument("--level", choices=["word", "char"], default="word", help="char for CSL-Daily")
    p.add_argument("--out", default=None, help="write the metrics here as JSON")
    args = p.parse_args(argv)
    metrics = evaluate_ensemble(args.slt, args.features, args.split, args.beam_size, args.length_penalty,
                                args.max_length, args.level)
    for arm, m in metrics.items():
        print(arm, {k: f"{v:.2f}" for k, v in m.items()})
    if args.out:
        Path(args.out).write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
