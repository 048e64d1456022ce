"""CenterCLIP method: meanP video embedding, clustering inside the tower, loss, retrieval metrics, recipes, I/O."""

import pytest
import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError
from visionzoo.core.registry import create_model, load_recipe
from visionzoo.engine.task import StepContext
from visionzoo.methods.vl.centerclip.efficiency import saved_activation_elements, vision_tower_flops
from visionzoo.methods.vl.centerclip.model import CenterCLIPTask, multi_caption_retrieval
from visionzoo.nn.clip import to_openai_state_dict


def _model(mode="kmedoids", layers=4, after=2, segments=4, k=16):
    torch.manual_seed(0)
    cluster = {"mode": mode, "after_block": after, "segments": segments, "k": k}
    return create_model("centerclip", arch="tiny", cluster=cluster, vision_layers=layers).eval()


def _video(b=2, t=12, seed=0):
    return torch.randn(b, t, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_unclustered_video_embedding_is_clip4clip_mean_pooling():
    model, video = _model("none"), _video()
    frames = F.normalize(model.clip.encode_image(video.flatten(0, 1)), dim=-1).reshape(2, 12, -1)
    torch.testing.assert_close(model.encode_video(video), F.normalize(frames.mean(1), dim=-1))


def test_blocks_after_clustering_see_one_sequence_of_1_plus_k_tokens_per_segment():
    model, shapes = _model(), []
    for block in model.clip.visual.blocks:
        block.register_forward_pre_hook(lambda m, a: shapes.append(tuple(a[0].shape)))
    out = model.encode_segments(_video())
    assert shapes == [(24, 17, 64), (24, 17, 64), (8, 17, 64), (8, 17, 64)]  # 3 frames x 16 -> 16 medoids
    assert out.shape == (2, 4, 32)


def test_saved_activations_after_clustering_shrink_to_the_kept_token_fraction():
    video = _video(1)
    clustered = saved_activation_elements(_model(), video)
    full = saved_activation_elements(_model("none"), video)
    assert clustered["block0"] == full["block0"]
    fraction = 4 * (1 + 16) / (12 * (1 + 16))
    assert clustered["block3"] / full["block3"] == pytest.approx(fraction, rel=0.02)


def test_token_flop_upper_bound_matches_the_paper_settings():
    def bound(segments):
        return vision_tower_flops(12, 49, 768, 12, 6, 4, 49, "none") / vision_tower_flops(12, 49, 768, 12, 6, segments, 49)

    assert bound(4) == pytest.approx(1.5, abs=0.01)  # spec 2g: B6-4,49 upper bound 1.50x
    assert bound(3) == pytest.approx(1.6, abs=0.01)  # B6-3,49: 1.60x


def test_multi_caption_retrieval_ranks_by_hand():
    videos = torch.eye(3)
    # captions 0,1 -> video 0; caption 2 -> video 1; caption 3 -> video 2
    texts = torch.tensor([[1.0, 0.2, 0.0], [0.1, 0.9, 0.0], [0.0, 1.0, 0.5], [0.3, 0.0, 0.2]])
    m = multi_caption_retrieval(texts, videos, [0, 0, 1, 2])
    # T2V ranks (1-based): caption0 -> 1, caption1 -> 2 (video1 scores 0.9), caption2 -> 1, caption3 -> 2
    assert m["t2v_r1"] == 50.0 and m["t2v_r5"] == 100.0 and m["t2v_medr"] == 1.5 and m["t2v_mnr"] == 1.5
    # V2T (a video's caption set scored by its best caption): video0 -> 1; video1: own 1.0 beats video0's
    # best 0.9 -> 1; video2: own 0.2 loses to video1's caption (0.5) -> 2
    assert m["v2t_r1"] == pytest.approx(200 / 3) and m["v2t_mnr"] == pytest.approx(4 / 3)


def test_training_step_gives_finite_symmetric_infonce_and_gradients_past_the_clustering():
    cfg = load_recipe("centerclip/tiny", ["model.vision_layers=4", "model.cluster.after_block=2"])[1]
    task = CenterCLIPTask(cfg)
    tokens = torch.zeros(2, 16, dtype=torch.long)
    tokens[:, 0], tokens[:, 1], tokens[:, 2] = 49406, torch.tensor([320, 321]), 49407
    out = task.training_step((_video(), tokens), StepContext(0, 1, 0))
    assert torch.isfinite(out.loss) and 0 < out.loss < 10
    out.loss.backward()
    blocks = task.model.clip.visual.blocks
    assert blocks[0].attn.qkv.weight.grad.abs().sum() > 0 and blocks[3].mlp.fc2.weight.grad.abs().sum() > 0


def test_bad_cluster_settings_fail_early():
    with pytest.raises(ConfigError, match="after_block"):
        _model(after=4)
    with pytest.raises(ConfigError, match="segments"):
        _model(segments=5).encode_video(_video())


@pytest.mark.parametrize("recipe,arch,frames,segments,k", [
    ("paper", "vit_b32", 12, 4, 49), ("paper_b16", "vit_b16", 12, 4, 160), ("paper_msvd", "vit_b32", 12, 4, 49),
    ("paper_activitynet", "vit_b32", 60, 12, 49), ("tiny", "tiny", 12, 4, 16)])
def test_recipes_have_the_paper_shapes(recipe, arch, frames, segments, k):
    _, cfg, _ = load_recipe(f"centerclip/{recipe}")
    c = cfg.model.cluster
    assert (cfg.model.arch, cfg.data.num_frames, c.segments, c.k, c.mode) == (arch, frames, segments, k, "kmedoids")
    assert frames % segments == 0


def test_loads_clip_weights_from_a_centerclip_checkpoint_layout(tmp_path):
    source = _model()
    checkpoint = {"epoch": 4, "state_dict": {f"module.clip.{k}": v for k, v in to_openai_state_dict(source.clip).items()}}
    torch.save(checkpoint, tmp_path / "ckpt.best.pth.tar")
    overrides = [f"model.pretrained={tmp_path / 'ckpt.best.pth.tar'}", "model.pretrained_prefix=clip.",
                 "model.vision_layers=4", "model.cluster.after_block=2"]
    task = CenterCLIPTask(load_recipe("centerclip/tiny", overrides)[1])
    for k, v in source.state_dict().items():
        torch.testing.assert_close(task.model.state_dict()[k], v)
