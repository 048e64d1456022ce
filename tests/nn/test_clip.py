"""Specification of the shared CLIP core (visionzoo.nn.clip) and its tokenizer (visionzoo.nn.tokenizer)."""

from __future__ import annotations

import math
import pickle
import socket

import pytest
import torch
from torch import nn

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.nn.clip import (
    CLIP,
    CLIPConfig,
    CLIPTextConfig,
    CLIPVisionConfig,
    clip_tiny,
    clip_vit_b16,
    clip_vit_b32,
    config_from_openai_state_dict,
    load_openai_state_dict,
    read_state_dict,
    to_openai_state_dict,
)


def _tiny(seed: int = 0) -> CLIP:
    torch.manual_seed(seed)
    return CLIP(clip_tiny()).eval()


def _text(batch: int = 2, length: int = 16, eot_at: tuple[int, ...] = (5, 9)) -> torch.Tensor:
    # Random ids below the specials, SOT first, EOT (the largest id) at eot_at, padding 0 after it.
    g = torch.Generator().manual_seed(1)
    t = torch.randint(1, 49406, (batch, length), generator=g)
    t[:, 0] = 49406
    for b, e in enumerate(eot_at[:batch]):
        t[b, e] = 49407
        t[b, e + 1 :] = 0
    return t


def _openai_like() -> CLIPConfig:
    # Widths that are multiples of 64, so heads = width / 64 can be inferred from shapes as OpenAI does.
    return CLIPConfig(
        embed_dim=16,
        vision=CLIPVisionConfig(image_size=16, patch_size=8, width=64, layers=2, heads=1),
        text=CLIPTextConfig(context_length=8, vocab_size=49408, width=64, heads=1, layers=1),
    )


# ---------------------------------------------------------------------------------------------- configs


def test_b32_has_openai_parameter_count():
    # 151,277,313 is OpenAI/open_clip ViT-B/32 (151.3M in open_clip's model profile).
    with torch.device("meta"):
        model = CLIP(clip_vit_b32())
    assert sum(p.numel() for p in model.parameters()) == 151_277_313


def test_b16_has_openai_parameter_count():
    with torch.device("meta"):
        model = CLIP(clip_vit_b16())
    assert sum(p.numel() for p in model.parameters()) == 149_620_737


def test_config_round_trips_through_dict():
    cfg = clip_tiny()
    assert CLIPConfig.from_dict(cfg.to_dict()) == cfg


def test_config_rejects_unknown_key_by_name():
    d = clip_tiny().to_dict()
    d["vision"]["patch"] = 8
    with pytest.raises(ConfigError, match="CLIPConfig.vision.*'patch'"):
        CLIPConfig.from_dict(d)


# ---------------------------------------------------------------------------------------------- vision


def test_vision_tower_returns_projected_cls_and_normalised_tokens():
    model = _tiny()
    with torch.no_grad():
        out = model.visual(torch.randn(2, 3, 32, 32), return_tokens=True)
    assert out.embeds.shape == (2, 32)
    assert out.tokens.shape == (2, 1 + 16, 64)  # CLS + 4x4 patches
    torch.testing.assert_close(out.tokens[:, 0] @ model.visual.proj, out.embeds)


def test_vision_attention_maps_are_per_block_softmax_and_do_not_change_the_output():
    model = _tiny()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model.visual(x).embeds
        out = model.visual(x, return_attention=True)
    assert [a.shape for a in out.attentions] == [(2, 4, 17, 17)] * 2
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(2, 4, 17))
    torch.testing.assert_close(out.embeds, plain, atol=1e-5, rtol=1e-5)  # explicit softmax == SDPA


def test_token_hook_runs_after_every_block_and_may_drop_tokens():
    model = _tiny()
    calls = []

    def keep_cls_and_three(i: int, tokens: torch.Tensor) -> torch.Tensor:
        calls.append((i, tokens.shape[1]))
        return tokens[:, :4] if i == 0 else tokens

    with torch.no_grad():
        out = model.visual(torch.randn(2, 3, 32, 32), return_tokens=True, token_hook=keep_cls_and_three, return_attention=True)
    assert calls == [(0, 17), (1, 4)]
    assert out.tokens.shape == (2, 4, 64)
    assert out.attentions[1].shape == (2, 4, 4, 4)


def test_token_hook_may_merge_frames_into_segments():
    # CenterCLIP-style: 4 frames of 2 videos -> 2 segments of 2 frames each per video changes the batch.
    model = _tiny()

    def merge_pairs(i: int, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.reshape(tokens.shape[0] // 2, 2 * tokens.shape[1], -1)[:, :17] if i == 0 else tokens

    with torch.no_grad():
        out = model.visual(torch.randn(8, 3, 32, 32), token_hook=merge_pairs)
    assert out.embeds.shape == (4, 32)


def test_vision_tower_rejects_wrong_image_size():
    with pytest.raises(ValueError, match="expects 32x32"):
        _tiny().visual(torch.randn(1, 3, 64, 64))


# ---------------------------------------------------------------------------------------------- text


def test_text_embedding_ignores_tokens_after_eot():
    model = _tiny()
    t = _text()
    changed = t.clone()
    changed[0, 7:] = 123  # after row 0's EOT at 5; causality means EOT never sees them
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(changed)[0], model.encode_text(t)[0])


def test_text_embedding_depends_on_tokens_before_eot():
    model = _tiny()
    t = _text()
    changed = t.clone()
    changed[0, 2] = 123
    with torch.no_grad():
        assert not torch.allclose(model.encode_text(changed)[0], model.encode_text(t)[0])


def test_trimming_padding_after_the_last_eot_keeps_text_embeddings():
    model = _tiny()
    t = _text()
    with torch.no_grad():
        trimmed, full = model.encode_text(t), model.encode_text(t, trim_padding=False)
    torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=1e-5)


def test_text_is_pooled_at_the_eot_token():
    model = _tiny()
    t = _text()
    with torch.no_grad():
        out = model.text(t, return_tokens=True)
    torch.testing.assert_close(out.embeds, out.tokens[torch.arange(2), torch.tensor([5, 9])] @ model.text.text_projection)


def test_text_attention_is_causal():
    with torch.no_grad():
        attn = _tiny().text(_text(), return_attention=True).attentions[0]
    assert torch.all(attn.triu(diagonal=1) == 0)


# ---------------------------------------------------------------------------------------------- CLIP


def test_logit_scale_starts_at_log_one_over_point_zero_seven():
    assert _tiny().logit_scale.item() == pytest.approx(math.log(1 / 0.07))


def test_forward_logits_are_scaled_cosines_in_both_directions():
    model = _tiny()
    images, text = torch.randn(3, 3, 32, 32), _text()
    with torch.no_grad():
        out = model(images, text)
    img = model.encode_image(images).detach()
    txt = model.encode_text(text).detach()
    cos = torch.nn.functional.cosine_similarity(img[:, None], txt[None], dim=-1)
    torch.testing.assert_close(out.logits_per_image, cos / 0.07, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.logits_per_text, out.logits_per_image.t())
    torch.testing.assert_close(out.image_embeds.norm(dim=-1), torch.ones(3))


# ---------------------------------------------------------------------------------------------- converter


def test_openai_layout_round_trip_infers_config_and_reproduces_outputs():
    torch.manual_seed(0)
    ours = CLIP(_openai_like()).eval()
    sd = to_openai_state_dict(ours)
    assert "visual.transformer.resblocks.1.attn.in_proj_weight" in sd and "transformer.resblocks.0.mlp.c_fc.bias" in sd
    loaded = load_openai_state_dict(sd).eval()
    assert loaded.cfg == ours.cfg
    x, t = torch.randn(2, 3, 16, 16), _text(2, 8, (3, 6))
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(x), ours.encode_image(x))
        torch.testing.assert_close(loaded.encode_text(t), ours.encode_text(t))


def test_loaded_model_owns_float32_trainable_copies():
    torch.manual_seed(0)
    sd = {k: v.half() for k, v in to_openai_state_dict(CLIP(_openai_like())).items()}  # OpenAI ships fp16
    model = load_openai_state_dict(sd)
    assert all(p.dtype == torch.float32 and p.requires_grad and p.device.type == "cpu" for p in model.parameters())
    model.visual.proj.data.zero_()
    assert sd["visual.proj"].abs().sum() > 0


def test_converter_strips_ddp_and_selected_prefixes():
    torch.manual_seed(0)
    ours = CLIP(_openai_like())
    sd = {f"module.clip.{k}": v for k, v in to_openai_state_dict(ours).items()}
    sd["module.head.weight"] = torch.zeros(1)  # another sub-model of the checkpoint, not ours
    loaded = load_openai_state_dict(sd, prefix="clip.")
    torch.testing.assert_close(loaded.visual.proj, ours.visual.proj)


def test_converter_names_a_missing_key():
    sd = to_openai_state_dict(CLIP(_openai_like()))
    del sd["visual.transformer.resblocks.0.mlp.c_fc.weight"]
    with pytest.raises(CheckpointError, match=r"missing key\(s\) \[visual\.blocks\.0\.mlp\.fc1\.weight\]"):
        load_openai_state_dict(sd)


def test_converter_names_an_unexpected_key():
    sd = to_openai_state_dict(CLIP(_openai_like()))
    sd["visual.transformer.resblocks.0.attn.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\) \[visual\.transformer\.resblocks\.0\.attn\.extra\]"):
        load_openai_state_dict(sd)


def test_converter_reports_shape_mismatch_with_a_given_model():
    sd = to_openai_state_dict(CLIP(_openai_like()))
    cfg = _openai_like()
    cfg.vision.patch_size = 4  # same keys, other conv and position shapes
    with pytest.raises(CheckpointError, match=r"shape mismatch.*visual\.conv1\.weight \(64, 3, 8, 8\) vs \(64, 3, 4, 4\)"):
        load_openai_state_dict(sd, model=CLIP(cfg))


def test_converter_refuses_resnet_clip():
    with pytest.raises(CheckpointError, match="ModifiedResNet"):
        config_from_openai_state_dict({"visual.layer1.0.conv1.weight": torch.zeros(1)})


# ---------------------------------------------------------------------------------------------- files


def test_reads_safetensors_and_weights_only_torch_files(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    sd = to_openai_state_dict(CLIP(_openai_like()))
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "clip.safetensors"))
    torch.save({"epoch": 3, "state_dict": sd}, tmp_path / "ckpt.pth")  # training-checkpoint nesting
    a = load_openai_state_dict(tmp_path / "clip.safetensors")
    b = load_openai_state_dict(tmp_path / "ckpt.pth")
    torch.testing.assert_close(a.text.text_projection, sd["text_projection"])
    torch.testing.assert_close(b.text.text_projection, sd["text_projection"])


class _Payload:  # a pickled object that weights_only loading must refuse to build
    pass


def test_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"visual.proj": _Payload()}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(CheckpointError, match="weights_only"):
        read_state_dict(path)


def _torchscript_archive(sd: dict[str, torch.Tensor], path) -> None:
    # A TorchScript module whose state_dict has exactly these keys, like OpenAI's JIT release files.
    root = nn.Module()
    for key, value in sd.items():
        *parents, leaf = key.split(".")
        m = root
        for name in parents:
            if not hasattr(m, name):
                m.add_module(name, nn.Module())
            m = getattr(m, name)
        m.register_parameter(leaf, nn.Parameter(value.clone()))
    torch.jit.save(torch.jit.script(root), str(path))


def test_torchscript_archive_needs_explicit_permission(tmp_path):
    torch.manual_seed(0)
    sd = to_openai_state_dict(CLIP(_openai_like()))
    path = tmp_path / "ViT-tiny.pt"
    _torchscript_archive(sd, path)
    with pytest.raises(CheckpointError, match="TorchScript.*allow_torchscript=True"):
        load_openai_state_dict(path)
    model = load_openai_state_dict(path, allow_torchscript=True)
    torch.testing.assert_close(model.visual.proj, sd["visual.proj"])


def test_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_openai_state_dict(tmp_path / "nope.safetensors")


# ---------------------------------------------------------------------------------------------- tokenizer


def test_tokenizer_equals_open_clip_tokenize():
    open_clip = pytest.importorskip("open_clip")
    from visionzoo.nn.tokenizer import clip_tokenize

    texts = ["a photo of a cat.", "Ünïcödé & punctuation!!", "word " * 100]  # the last one is truncated
    assert torch.equal(clip_tokenize(texts), open_clip.tokenize(texts))
    assert torch.equal(clip_tokenize(texts, context_length=16), open_clip.tokenize(texts, context_length=16))
    assert clip_tokenize("a dog")[0, :4].tolist() == [49406, 320, 1929, 49407]


def test_tokenizer_works_without_network(monkeypatch):
    pytest.importorskip("open_clip")
    from visionzoo.nn import tokenizer

    def no_network(*args, **kwargs):
        raise AssertionError("the tokenizer tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    tokenizer._tokenizer.cache_clear()  # force a fresh vocabulary load under the block
    ids = tokenizer.clip_tokenize(["a diagram"], context_length=8)
    assert ids.shape == (1, 8) and ids[0, 0] == 49406 and 49407 in ids[0]


# ---------------------------------------------------------------------------------------------- parity


def _open_clip_tiny():
    open_clip = pytest.importorskip("open_clip")
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    cfg = clip_tiny()
    v, t = cfg.vision, cfg.text
    return open_clip.model.CLIP(
        embed_dim=cfg.embed_dim,
        vision_cfg=CLIPVisionCfg(layers=v.layers, width=v.width, head_width=v.width // v.heads, image_size=v.image_size, patch_size=v.patch_size),
        text_cfg=CLIPTextCfg(context_length=t.context_length, vocab_size=t.vocab_size, width=t.width, heads=t.heads, layers=t.layers),
        quick_gelu=True,
    )


def test_tiny_parity_with_open_clip():
    torch.manual_seed(0)
    peer = _open_clip_tiny().eval()
    ours = load_openai_state_dict(peer.state_dict(), model=CLIP(clip_tiny())).eval()
    images, text = torch.randn(3, 3, 32, 32), _text()
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_image(images), peer.encode_image(images), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.encode_text(text), peer.encode_text(text), atol=1e-5, rtol=1e-5)
        peer_img, peer_txt, peer_scale = peer(images, text)
        out = ours(images, text)
    torch.testing.assert_close(out.logits_per_image, peer_scale * peer_img @ peer_txt.t(), atol=1e-4, rtol=1e-5)


@pytest.fixture(scope="module")
def b32_pair():
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    peer = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None).eval()
    ours = load_openai_state_dict(peer.state_dict()).eval()
    return ours, peer


def test_b32_converter_infers_the_b32_config(b32_pair):
    ours, _ = b32_pair
    assert ours.cfg == clip_vit_b32()


def test_b32_image_parity_with_open_clip(b32_pair):
    ours, peer = b32_pair
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_image(images), peer.encode_image(images), atol=1e-4, rtol=1e-4)


def test_b32_text_parity_with_open_clip(b32_pair):
    from visionzoo.nn.tokenizer import clip_tokenize

    ours, peer = b32_pair
    text = clip_tokenize(["a photo of a cat", "a diagram of a transformer block"])
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_text(text), peer.encode_text(text), atol=1e-4, rtol=1e-4)


def test_b16_openai_layout_matches_ours_key_for_key():
    open_clip = pytest.importorskip("open_clip")
    from visionzoo.nn.clip import openai_to_ours

    with torch.device("meta"):
        peer = open_clip.model.CLIP(**open_clip.get_model_config("ViT-B-16-quickgelu"))
        ours = CLIP(clip_vit_b16())
    peer_sd = peer.state_dict()
    assert config_from_openai_state_dict(peer_sd) == clip_vit_b16()
    mapped = {k: tuple(v.shape) for k, v in openai_to_ours(peer_sd).items()}
    assert mapped == {k: tuple(v.shape) for k, v in ours.state_dict().items()}
