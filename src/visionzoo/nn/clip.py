"""CLIP (Radford et al., 2021): a ViT image tower and a causal text transformer in one embedding space.

One CLIP core for every vision-language method (A-CLIP, CenterCLIP, LOUPE, SAN). Blocks are the shared
pre-norm ``nn.transformer.Block`` (timm parameter names); OpenAI / open_clip checkpoints are mapped onto
them by ``load_openai_state_dict``, a small explicit key map. The towers expose what the methods need:
all final tokens, per-block attention maps (A-CLIP's CLS attention) and a hook that may rewrite the
token sequence between blocks (CenterCLIP's token clustering).
"""

from __future__ import annotations

import math
import re
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.nn.transformer import Block

TokenHook = Callable[[int, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------- config


@dataclass
class CLIPVisionConfig:
    image_size: int = 224
    patch_size: int = 32
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0


@dataclass
class CLIPTextConfig:
    context_length: int = 77
    vocab_size: int = 49408
    width: int = 512
    heads: int = 8
    layers: int = 12
    mlp_ratio: float = 4.0


@dataclass
class CLIPConfig:
    embed_dim: int = 512
    vision: CLIPVisionConfig = field(default_factory=CLIPVisionConfig)
    text: CLIPTextConfig = field(default_factory=CLIPTextConfig)
    act: str = "quick_gelu"  # OpenAI weights were trained with QuickGELU; open_clip's LAION models use "gelu"
    norm_eps: float = 1e-5  # torch's LayerNorm default, which OpenAI used (timm ViTs use 1e-6)
    init_logit_scale: float = math.log(1 / 0.07)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CLIPConfig":
        """Build from a (possibly nested) dict, e.g. a ``config.json``; unknown keys are errors."""
        sub = {"vision": CLIPVisionConfig, "text": CLIPTextConfig}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"CLIPConfig: unknown key(s) {unknown}; expected some of {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for k, v in d.items():
            if k in sub and isinstance(v, Mapping):
                sub_known = {f.name for f in fields(sub[k])}
                bad = sorted(set(v) - sub_known)
                if bad:
                    raise ConfigError(f"CLIPConfig.{k}: unknown key(s) {bad}; expected some of {sorted(sub_known)}")
                v = sub[k](**v)
            kwargs[k] = v
        return cls(**kwargs)


def clip_vit_b32() -> CLIPConfig:
    """OpenAI CLIP ViT-B/32: 224 px, 7x7 patches of 32 px, 151.3M parameters."""
    return CLIPConfig(embed_dim=512, vision=CLIPVisionConfig(224, 32, 768, 12, 12), text=CLIPTextConfig(width=512, heads=8, layers=12))


def clip_vit_b16() -> CLIPConfig:
    """OpenAI CLIP ViT-B/16: 224 px, 14x14 patches of 16 px, 149.6M parameters."""
    return CLIPConfig(embed_dim=512, vision=CLIPVisionConfig(224, 16, 768, 12, 12), text=CLIPTextConfig(width=512, heads=8, layers=12))


def clip_tiny() -> CLIPConfig:
    """A few-hundred-thousand-parameter CLIP for tests and CPU proxies (real vocabulary, short context)."""
    return CLIPConfig(
        embed_dim=32,
        vision=CLIPVisionConfig(image_size=32, patch_size=8, width=64, layers=2, heads=4),
        text=CLIPTextConfig(context_length=16, vocab_size=49408, width=32, heads=2, layers=2),
    )


# ---------------------------------------------------------------------------------------------- towers


@dataclass
class CLIPVisionOutput:
    embeds: torch.Tensor  # (B, E): projected CLS token, ln_post(cls) @ proj
    tokens: torch.Tensor | None = None  # (B, N, W): ln_post of every final token (CLS first), not projected
    attentions: list[torch.Tensor] | None = None  # per block (B, H, N_i, N_i); N_i changes if a hook drops tokens


class CLIPVisionTower(nn.Module):
    """ViT as OpenAI built it for CLIP: bias-free patch conv, learned CLS + positions, ln_pre, ln_post, proj."""

    def __init__(self, cfg: CLIPVisionConfig, embed_dim: int, act: str = "quick_gelu", norm_eps: float = 1e-5):
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ConfigError(f"CLIPVisionConfig: image_size {cfg.image_size} is not a multiple of patch_size {cfg.patch_size}")
        self.cfg = cfg
        self.grid_size = cfg.image_size // cfg.patch_size
        W = cfg.width
        scale = W**-0.5  # OpenAI's init scale for the embeddings and the projection
        self.conv1 = nn.Conv2d(3, W, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(W))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.grid_size**2 + 1, W))
        self.ln_pre = nn.LayerNorm(W, eps=norm_eps)
        self.blocks = nn.ModuleList(
            Block(W, cfg.heads, mlp_ratio=cfg.mlp_ratio, act=act, norm_eps=norm_eps) for _ in range(cfg.layers)
        )
        self.ln_post = nn.LayerNorm(W, eps=norm_eps)
        self.proj = nn.Parameter(scale * torch.randn(W, embed_dim))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        # images: (B, 3, H, W) -> tokens after ln_pre (B, 1 + g*g, W), CLS first
        x = rearrange(self.conv1(images), "b c h w -> b (h w) c")
        if x.shape[1] + 1 != self.positional_embedding.shape[0]:
            raise ValueError(
                f"CLIPVisionTower: image of {tuple(images.shape[-2:])} gives {x.shape[1]} patches; "
                f"this tower expects {self.cfg.image_size}x{self.cfg.image_size} ({self.grid_size**2} patches)"
            )
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        return self.ln_pre(x)

    def forward(
        self,
        images: torch.Tensor,
        return_tokens: bool = False,
        token_hook: TokenHook | None = None,
        return_attention: bool = False,
    ) -> CLIPVisionOutput:
        """images (B, 3, H, W) -> CLIPVisionOutput.

        ``token_hook(i, tokens) -> tokens`` runs after block ``i`` (0-based) on (B, N, W) tokens and may
        return a different batch size or token count (CenterCLIP clusters frame tokens after block 6,
        i.e. i == 5), as long as the CLS token stays at index 0.
        """
        x = self.embed(images)
        attentions: list[torch.Tensor] | None = [] if return_attention else None
        for i, block in enumerate(self.blocks):
            x, attn = block(x, return_attention=return_attention)
            if attentions is not None:
                attentions.append(attn)
            if token_hook is not None:
                x = token_hook(i, x)
        if return_tokens:
            tokens = self.ln_post(x)
            pooled = tokens[:, 0]
        else:
            tokens, pooled = None, self.ln_post(x[:, 0])  # skip normalising tokens nobody asked for
        return CLIPVisionOutput(embeds=pooled @ self.proj, tokens=tokens, attentions=attentions)


@dataclass
class CLIPTextOutput:
    embeds: torch.Tensor  # (B, E): ln_final of the EOT token (highest token id) @ text_projection
    tokens: torch.Tensor | None = None  # (B, L, W): ln_final of every token, not projected
    attentions: list[torch.Tensor] | None = None  # per block (B, H, L, L), causal


class CLIPTextTower(nn.Module):
    """Causal transformer over BPE ids; the sequence is summarised by its end-of-text token."""

    def __init__(self, cfg: CLIPTextConfig, embed_dim: int, act: str = "quick_gelu", norm_eps: float = 1e-5):
        super().__init__()
        self.cfg = cfg
        W = cfg.width
        self.token_embedding = nn.Embedding(cfg.vocab_size, W)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, W))
        self.blocks = nn.ModuleList(
            Block(W, cfg.heads, mlp_ratio=cfg.mlp_ratio, act=act, norm_eps=norm_eps) for _ in range(cfg.layers)
        )
        self.ln_final = nn.LayerNorm(W, eps=norm_eps)
        self.text_projection = nn.Parameter(torch.empty(W, embed_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # OpenAI CLIP's text init (their initialize_parameters)
        W, L = self.cfg.width, self.cfg.layers
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        attn_std, proj_std, fc_std = W**-0.5, W**-0.5 * (2 * L) ** -0.5, (2 * W) ** -0.5
        for block in self.blocks:
            nn.init.normal_(block.attn.qkv.weight, std=attn_std)
            nn.init.normal_(block.attn.proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.fc1.weight, std=fc_std)
            nn.init.normal_(block.mlp.fc2.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=W**-0.5)

    def forward(
        self, text: torch.Tensor, return_tokens: bool = False, return_attention: bool = False, trim_padding: bool = True
    ) -> CLIPTextOutput:
        """text (B, L) token ids, L <= context_length, padded with 0 after the end-of-text token.

        With ``trim_padding`` (and no tokens or attention maps asked for) the sequence is cut after the
        batch's last EOT: under the causal mask no later position can reach an EOT, so the embeddings are
        unchanged while a typical caption costs ~15 of 77 positions. It reads the EOT positions on the
        host, so pass ``trim_padding=False`` for static shapes (torch.compile, export).
        """
        B, L = text.shape
        if L > self.cfg.context_length:
            raise ValueError(f"CLIPTextTower: {L} tokens exceed context_length {self.cfg.context_length}")
        # The end-of-text token has the largest id in CLIP's vocabulary, so argmax finds it.
        eot = text.argmax(dim=-1)
        if trim_padding and not (return_tokens or return_attention):
            L = int(eot.max()) + 1
            text = text[:, :L]
        x = self.token_embedding(text) + self.positional_embedding[:L]
        # True = may attend: token t sees tokens <= t. Built per call (L*L bools, negligible) rather than
        # kept as a buffer, so a model built on the meta device and loaded with assign=True is complete.
        mask = torch.ones(L, L, dtype=torch.bool, device=text.device).tril()
        attentions: list[torch.Tensor] | None = [] if return_attention else None
        for block in self.blocks:
            x, attn = block(x, attn_mask=mask, return_attention=return_attention)
            if attentions is not None:
                attentions.append(attn)
        if return_tokens:
            tokens = self.ln_final(x)
            pooled = tokens[torch.arange(B, device=x.device), eot]
        else:
            tokens, pooled = None, self.ln_final(x[torch.arange(B, device=x.device), eot])
        return CLIPTextOutput(embeds=pooled @ self.text_projection, tokens=tokens, attentions=attentions)


# ---------------------------------------------------------------------------------------------- model


@dataclass
class CLIPOutput:
    image_embeds: torch.Tensor  # (B_i, E), L2-normalised
    text_embeds: torch.Tensor  # (B_t, E), L2-normalised
    logits_per_image: torch.Tensor  # (B_i, B_t) = exp(logit_scale) * cosine similarity
    logits_per_text: torch.Tensor  # (B_t, B_i)


class CLIP(nn.Module):
    def __init__(self, cfg: CLIPConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or clip_vit_b32()
        self.visual = CLIPVisionTower(cfg.vision, cfg.embed_dim, act=cfg.act, norm_eps=cfg.norm_eps)
        self.text = CLIPTextTower(cfg.text, cfg.embed_dim, act=cfg.act, norm_eps=cfg.norm_eps)
        # Temperature in log space; A-CLIP-style training clamps it to <= log(100) after each step.
        self.logit_scale = nn.Parameter(torch.tensor(cfg.init_logit_scale))

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        # images (B, 3, H, W) -> (B, E)
        x = self.visual(images).embeds
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, text: torch.Tensor, normalize: bool = False, trim_padding: bool = True) -> torch.Tensor:
        # text (B, L) token ids -> (B, E); trim_padding: see CLIPTextTower.forward
        x = self.text(text, trim_padding=trim_padding).embeds
        return F.normalize(x, dim=-1) if normalize else x

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> CLIPOutput:
        img = self.encode_image(images, normalize=True)
        txt = self.encode_text(text, normalize=True)
        logits_per_image = self.logit_scale.exp() * img @ txt.t()
        return CLIPOutput(img, txt, logits_per_image, logits_per_image.t())


# ------------------------------------------------------------------------------ OpenAI checkpoint layout

# Per-block names: OpenAI ResidualAttentionBlock -> our nn.transformer.Block (timm names).
_BLOCK_MAP = {
    "ln_1": "norm1",
    "attn.in_proj_weight": "attn.qkv.weight",  # q, k, v stacked in the same order as timm's qkv
    "attn.in_proj_bias": "attn.qkv.bias",
    "attn.out_proj": "attn.proj",
    "ln_2": "norm2",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
_TOP_MAP = {
    "visual.conv1.weight": "visual.conv1.weight",
    "visual.class_embedding": "visual.class_embedding",
    "visual.positional_embedding": "visual.positional_embedding",
    "visual.ln_pre": "visual.ln_pre",
    "visual.ln_post": "visual.ln_post",
    "visual.proj": "visual.proj",
    "token_embedding.weight": "text.token_embedding.weight",
    "positional_embedding": "text.positional_embedding",
    "ln_final": "text.ln_final",
    "text_projection": "text.text_projection",
    "logit_scale": "logit_scale",
}
# Metadata that OpenAI's JIT archives carry next to the weights (their build_model drops them too).
_OPENAI_META = ("input_resolution", "context_length", "vocab_size")
_BLOCK_RE = re.compile(r"^(visual\.transformer|transformer)\.resblocks\.(\d+)\.(.+)$")


def _map_key(key: str) -> str | None:
    """OpenAI key -> our key, or None if the key is not part of the OpenAI ViT CLIP layout."""
    m = _BLOCK_RE.match(key)
    if m:
        tower, idx, rest = m.groups()
        ours = "visual.blocks" if tower == "visual.transformer" else "text.blocks"
        for src, dst in _BLOCK_MAP.items():
            if rest == src or rest.startswith(src + "."):
                return f"{ours}.{idx}.{dst}{rest[len(src):]}"
        return None
    for src, dst in _TOP_MAP.items():
        if key == src or key.startswith(src + "."):
            return dst + key[len(src):]
    return None


def openai_to_ours(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an OpenAI-layout CLIP state dict to our module names; unknown keys are an error."""
    out, unexpected = {}, []
    for k, v in state_dict.items():
        if k in _OPENAI_META:
            continue
        ours = _map_key(k)
        if ours is None:
            unexpected.append(k)
        else:
            out[ours] = v
    if unexpected:
        raise CheckpointError(f"OpenAI CLIP state dict: unexpected key(s) {_few(unexpected)}; expected the ViT CLIP layout")
    return out


def to_openai_state_dict(model: CLIP) -> dict[str, torch.Tensor]:
    """Our CLIP's weights under OpenAI's names (the inverse of ``openai_to_ours``)."""
    inverse_block = {v: k for k, v in _BLOCK_MAP.items()}
    inverse_top = {v: k for k, v in _TOP_MAP.items()}
    out = {}
    for k, v in model.state_dict().items():
        m = re.match(r"^(visual|text)\.blocks\.(\d+)\.(.+)$", k)
        if m:
            tower, idx, rest = m.groups()
            prefix = "visual.transformer" if tower == "visual" else "transformer"
            src = next(s for s in inverse_block if rest == s or rest.startswith(s + "."))
            out[f"{prefix}.resblocks.{idx}.{inverse_block[src]}{rest[len(src):]}"] = v
        else:
            src = next(s for s in inverse_top if k == s or k.startswith(s + "."))
            out[inverse_top[src] + k[len(src):]] = v
    return out


def config_from_openai_state_dict(sd: Mapping[str, torch.Tensor], where: str = "state dict") -> CLIPConfig:
    """Infer the architecture from tensor shapes, as OpenAI's ``build_model`` does (heads = width / 64)."""
    if any(k.startswith("visual.layer1.") for k in sd):
        raise CheckpointError(f"{where}: this is a ModifiedResNet CLIP (visual.layer1.*); only ViT CLIP is supported")
    needed = ["visual.conv1.weight", "visual.positional_embedding", "token_embedding.weight",
              "positional_embedding", "ln_final.weight", "text_projection"]  # fmt: skip
    missing = [k for k in needed if k not in sd]
    if missing:
        raise CheckpointError(f"{where}: missing key(s) {missing}; expected an OpenAI-layout ViT CLIP state dict")

    def count_blocks(prefix: str) -> int:
        return len({int(m.group(1)) for k in sd if (m := re.match(rf"^{re.escape(prefix)}\.(\d+)\.", k))})

    conv = sd["visual.conv1.weight"]  # (W, 3, p, p)
    vision_width, patch = conv.shape[0], conv.shape[-1]
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text_width = sd["ln_final.weight"].shape[0]
    return CLIPConfig(
        embed_dim=sd["text_projection"].shape[1],
        vision=CLIPVisionConfig(
            image_size=grid * patch, patch_size=patch, width=vision_width,
            layers=count_blocks("visual.transformer.resblocks"), heads=vision_width // 64,
        ),
        text=CLIPTextConfig(
            context_length=sd["positional_embedding"].shape[0], vocab_size=sd["token_embedding.weight"].shape[0],
            width=text_width, heads=text_width // 64, layers=count_blocks("transformer.resblocks"),
        ),
    )  # fmt: skip


def _few(keys: list[str], n: int = 8) -> str:
    shown = ", ".join(keys[:n])
    return f"[{shown}{f', ... ({len(keys)} in all)' if len(keys) > n else ''}]"


def _is_torchscript(path: Path) -> bool:
    # A TorchScript archive is a zip holding compiled code next to the tensors.
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())


def read_state_dict(path: str | Path, allow_torchscript: bool = False) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, without unpickling code.

    ``.safetensors`` is read directly; other files go through ``torch.load(weights_only=True)``. OpenAI's
    released ``ViT-B-32.pt`` files are TorchScript archives (compiled code + weights); loading one runs
    ``torch.jit.load`` and is allowed only with ``allow_torchscript=True`` because it executes the
    archive's code. Prefer converting such a file once to safetensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; expected CLIP weights (.safetensors or a torch state dict)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # noqa: BLE001 - safetensors raises several types for corrupt files
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    if _is_torchscript(path):
        if not allow_torchscript:
            raise CheckpointError(
                f"{path}: is a TorchScript archive (e.g. OpenAI's JIT .pt); loading it runs its code, "
                "pass allow_torchscript=True if you trust it"
            )
        return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle errors come in many types
        raise CheckpointError(f"{path}: not loadable with torch.load(weights_only=True) ({type(e).__name__}); "
                              "expected a plain state dict of tensors") from None  # fmt: skip
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # training checkpoints (CenterCLIP, A-CLIP) nest the weights
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}; expected a dict of tensors")
    return dict(obj)


def load_openai_state_dict(
    path_or_sd: str | Path | Mapping[str, torch.Tensor],
    model: CLIP | None = None,
    prefix: str = "",
    allow_torchscript: bool = False,
) -> CLIP:
    """Load OpenAI-layout CLIP weights (OpenAI, open_clip ``-quickgelu``/OpenAI models) into our CLIP.

    ``prefix`` selects a sub-model, e.g. ``"clip."`` in CenterCLIP checkpoints; a DDP ``module.`` prefix is
    stripped. Without ``model`` the architecture is inferred from the tensor shapes. Tensors are cast to
    the model's dtype (OpenAI ships fp16).
    """
    where = str(path_or_sd) if isinstance(path_or_sd, (str, Path)) else "state dict"
    sd = read_state_dict(path_or_sd, allow_torchscript) if isinstance(path_or_sd, (str, Path)) else dict(path_or_sd)
    sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    if prefix:
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if not sd:
            raise CheckpointError(f"{where}: no key starts with prefix {prefix!r}")
    fresh = model is None
    if fresh:
        # Built on the meta device: random init of 150M parameters would be thrown away (and takes seconds).
        with torch.device("meta"):
            model = CLIP(config_from_openai_state_dict(sd, where))
    try:
        ours = openai_to_ours(sd)
    except CheckpointError as e:
        raise CheckpointError(f"{where}: {e}") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in ours]
    if missing:
        raise CheckpointError(f"{where}: missing key(s) {_few(missing)} (our names); the checkpoint does not fit this CLIP")
    unexpected = [k for k in ours if k not in expected]
    if unexpected:
        raise CheckpointError(f"{where}: unexpected key(s) {_few(unexpected)} (our names); the checkpoint does not fit this CLIP")
    bad = [f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in ours.items() if v.shape != expected[k].shape]
    if bad:
        raise CheckpointError(f"{where}: shape mismatch (checkpoint vs model) for {_few(bad, 4)}")
    if fresh:
        # Own copies in the default dtype: OpenAI ships fp16, and the caller's tensors must not be aliased.
        dtype = torch.get_default_dtype()
        model.load_state_dict({k: v.to(dtype=dtype, copy=True) for k, v in ours.items()}, strict=True, assign=True)
    else:
        model.load_state_dict(ours, strict=True)  # copies, casting to the model's dtype and device
    return model
