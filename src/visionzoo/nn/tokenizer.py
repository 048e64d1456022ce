"""CLIP's byte-pair-encoding tokenizer, taken from open_clip rather than re-implemented.

open_clip's ``SimpleTokenizer`` is OpenAI's tokenizer; its 49,152-merge vocabulary
(``bpe_simple_vocab_16e6.txt.gz``) ships inside the open_clip wheel, so nothing is downloaded.
Ids: 49406 = start of text, 49407 = end of text (the largest id, which CLIP's text tower pools at),
0 = padding.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from visionzoo.core.errors import VisionZooError

SOT_ID = 49406
EOT_ID = 49407


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    try:
        from open_clip.tokenizer import SimpleTokenizer
    except ImportError:
        raise VisionZooError("clip_tokenize needs open_clip; install it with `pip install visionzoo[vl]`") from None
    return SimpleTokenizer()  # reads the vocabulary file bundled in the wheel, once per process


def clip_tokenize(texts: str | list[str], context_length: int = 77) -> torch.LongTensor:
    """Texts -> (B, context_length) ids: [SOT, tokens..., EOT, 0, ...]; long texts are cut, keeping EOT last."""
    if isinstance(texts, str):
        texts = [texts]
    return _tokenizer()(texts, context_length=context_length)
