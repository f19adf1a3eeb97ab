"""Captions to token ids: open_clip's byte-pair tokenizer (its vocabulary ships with the package, no download).

A caption becomes ``[<start>, bpe tokens..., <end>, 0, 0, ...]`` of length ``context_length``. Unlike
open_clip's own ``tokenize``, a caption that does not fit is an error here, never silently truncated.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from mcdm.errors import ConditionError

CONTEXT_LENGTH = 64
"""Tokens per caption, start and end tokens included (SynthFaces captions take 39 to 54)."""
VOCAB_SIZE = 49408
"""Size of open_clip's byte-pair vocabulary (the token embedding must have this many rows)."""


@lru_cache(maxsize=None)
def tokenizer(context_length: int = CONTEXT_LENGTH):
    """open_clip's ``SimpleTokenizer`` (offline: its BPE merges are bundled with open_clip)."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)


def count_tokens(caption: str, context_length: int = CONTEXT_LENGTH) -> int:
    """How many tokens ``caption`` takes, start and end tokens included."""
    return len(tokenizer(context_length).encode(caption)) + 2


def tokenize(caption: Any, context_length: int = CONTEXT_LENGTH, *, allow_empty: bool = False) -> torch.Tensor:
    """One caption -> LongTensor ``(context_length,)``; ConditionError for anything that is not a usable caption."""
    if not isinstance(caption, str):
        raise ConditionError(f"text: expected a caption string, got {type(caption).__name__}")
    if not allow_empty and not caption.strip():
        raise ConditionError("text: the caption is empty; leave the text modality out to generate without one")
    n = count_tokens(caption, context_length)
    if n > context_length:
        raise ConditionError(
            f"text: the caption is {n} tokens long (start and end tokens included), "
            f"more than the model's context of {context_length}; shorten it: {_shorten(caption)!r}"
        )
    return tokenizer(context_length)([caption])[0].to(torch.long)


def tokenize_batch(captions: list[str], context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """Many captions -> LongTensor ``(B, context_length)``; empty captions allowed (they are the null condition)."""
    return torch.stack([tokenize(c, context_length, allow_empty=True) for c in captions])


def null_tokens(context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """The tokens of the empty caption ``""``: the text modality's "no condition"."""
    return tokenize("", context_length, allow_empty=True)


def decode(tokens: torch.Tensor) -> str:
    """Token ids -> the (cleaned, lower-case) caption they encode; start, end and padding tokens dropped."""
    tok = tokenizer()
    ids = [int(i) for i in tokens.flatten().tolist()]
    if ids and ids[0] == tok.sot_token_id:
        ids = ids[1:]
    if tok.eot_token_id in ids:
        ids = ids[: ids.index(tok.eot_token_id)]
    return tok.decode(ids).strip()


def _shorten(caption: str, limit: int = 60) -> str:
    return caption if len(caption) <= limit else caption[: limit - 3] + "..."
