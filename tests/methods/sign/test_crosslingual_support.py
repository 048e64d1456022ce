"""Test-only pieces for the cross-lingual pipeline: a tiny keypoint CTC model behind the CSLR-backend
interface (the real pipeline uses TwoStream-SLR), and a SynthSign bilingual pair writer.

No tests live here; the other ``test_crosslingual_*`` files import it (same folder on sys.path).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from visionzoo.data.sign import PickleKeypoints, SignDataset, build_gloss_vocab, read_sign_dataset
from visionzoo.methods.sign.crosslingual.backends import SentencePosterior, TrainedCSLR
from visionzoo.methods.sign.crosslingual.islr_standin import normalise_keypoints
from visionzoo.methods.sign.crosslingual.pipeline import KEYPOINT_PICKLES
from visionzoo.nn.ctc import ctc_loss


def write_pair(root: Path, target_sentences: int = 60, aux_sentences: int = 120, seed: int = 0) -> tuple[Path, Path]:
    from visionzoo.data.synth.synthsign import write_synthsign

    common = dict(seed=seed, vocab_size=30, resolution=32, num_signers=3, noise=2.0)
    target, aux = root / "target", root / "aux"
    if not target.exists():
        write_synthsign(target, format="phoenix2014t", language="a", sentences=target_sentences, **common)
    if not aux.exists():
        write_synthsign(aux, format="phoenix2014t", language="b", sentences=aux_sentences, **common)
    return target, aux


class KeypointCTC(nn.Module):
    """Normalised 63-point keypoints -> two stride-2 temporal convs (stride 4, like S3D block 4) -> CTC."""

    def __init__(self, vocab_size: int, hidden: int = 96, kernel: int = 3):
        super().__init__()
        k = kernel
        self.net = nn.Sequential(nn.Conv1d(126, hidden, k, stride=2, padding=k // 2), nn.GELU(),
                                 nn.Conv1d(hidden, hidden, k, stride=2, padding=k // 2), nn.GELU(),
                                 nn.Conv1d(hidden, hidden, 3, padding=1), nn.GELU(), nn.Conv1d(hidden, vocab_size, 1))

    def forward(self, keypoints: torch.Tensor, lengths: torch.Tensor):  # (B, T, 133, 3) -> (B, T/4, V)
        x = normalise_keypoints(keypoints).flatten(2).transpose(1, 2)
        out = self.net(x).transpose(1, 2).log_softmax(-1)
        return out, torch.div(lengths + 3, 4, rounding_mode="floor").clamp(max=out.shape[1])


class KeypointCTCBackend:
    """The CSLR-backend interface over :class:`KeypointCTC` trained with a plain loop (test-only)."""

    temporal_stride = 4

    def __init__(self, steps: int = 150, lr: float = 3e-3, kernel: int = 3):
        self.steps, self.lr, self.kernel = steps, lr, kernel

    def _dataset(self, root, dataset, split, vocab):
        index = read_sign_dataset(dataset, root, split, media="ignore")
        kps = PickleKeypoints(Path(root) / KEYPOINT_PICKLES[dataset])
        return index, SignDataset(index.samples, load_frames=False, keypoints=kps, gloss_vocab=vocab)

    def train(self, root, dataset, run_dir, seed, overrides=()):
        torch.manual_seed(seed)
        index = read_sign_dataset(dataset, root, "train", media="ignore")
        vocab = build_gloss_vocab(index.samples)
        _, ds = self._dataset(root, dataset, "train", vocab)
        items = [ds[i] for i in range(len(ds))]
        model = KeypointCTC(len(vocab), kernel=self.kernel)
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr)
        g = torch.Generator().manual_seed(seed)
        for _ in range(self.steps):
            batch = ds.collate([items[i] for i in torch.randint(len(items), (16,), generator=g).tolist()])
            lp, lengths = model(batch["keypoints"], batch["keypoint_lengths"])
            loss = ctc_loss(lp, batch["gloss_ids"], lengths, batch["gloss_lengths"], reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        return TrainedCSLR(model, {"root": root, "dataset": dataset, "vocab": vocab}, None, Path(run_dir))

    def vocabulary(self, trained):
        return trained.datamodule["vocab"]

    @torch.no_grad()
    def posteriors(self, trained, split):
        dm = trained.datamodule
        _, ds = self._dataset(dm["root"], dm["dataset"], split, dm["vocab"])
        out = []
        for i in range(len(ds)):
            item = ds[i]
            kp = item["keypoints"]
            lp, lengths = trained.task(kp[None], torch.tensor([len(kp)]))
            out.append(SentencePosterior(item["name"], item["gloss"], len(kp), lp[0, : int(lengths[0])]))
        return out


def run_keypoint_proxy(root: Path, seeds=(0, 1, 2), steps: int = 300, target_sentences: int = 40,
                       aux_sentences: int = 160) -> list[dict]:
    """The proxy arms (target only / mapped / naive union) with the test-only keypoint CTC model as the CSLR
    (per-language and joint), the stand-in ISLR for the mapping; one row per (arm, seed). Not a test: run
    ``python -c "import test_crosslingual_support as s; s.run_keypoint_proxy(Path('/tmp/p'))"``."""
    import json
    import time

    from visionzoo.methods.sign.crosslingual import pipeline
    from visionzoo.methods.sign.crosslingual.config import CrossLingualConfig

    torch.set_num_threads(1)
    rows = []
    for seed in seeds:
        t0 = time.time()
        target, aux = write_pair(root / f"pair{seed}", target_sentences, aux_sentences, seed=seed)
        backend = KeypointCTCBackend(steps=steps)
        for arm, use_aux, mapped in (("target_only", False, False), ("mapped", True, True), ("naive_union", True, False)):
            cfg = CrossLingualConfig()
            cfg.data.root, cfg.data.aux.root, cfg.data.aux.dataset = str(target), str(aux), "phoenix2014t"
            cfg.data.work_dir = str(root / f"work{seed}")
            cfg.islr.backend = "standin"
            cfg.dictionary.boundaries, cfg.dictionary.write_videos = "midpoint", False
            cfg.mapping.tau, cfg.mapping.mutual, cfg.mapping.enabled = 0.5, True, mapped
            cfg.joint.use_aux = use_aux
            cfg.train.seed = seed
            prep = pipeline.prepare(cfg, backend=backend)
            trained = backend.train(prep["joint_root"], "phoenix2014t", root / "joint", seed)
            row = {"arm": arm, "seed": seed}
            vocab = set(prep["stages"]["joint"]["target_vocabulary"])
            for split in ("dev", "test"):
                posts = backend.posteriors(trained, split)
                hyps = pipeline.decode_posteriors(posts, backend.vocabulary(trained), "greedy")
                row[f"{split}_wer"] = pipeline.score_target([p.glosses for p in posts], hyps, vocab)
            st = prep["stages"]
            if "mapping" in st:
                row.update({k: st["mapping"][f"mapping_{k}"] for k in ("precision", "recall", "mapped")})
                row.update({"iou_target": st["dict_target"]["boundary_iou"], "iou_aux": st["dict_aux"]["boundary_iou"]})
            row["seconds"] = round(time.time() - t0, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows
