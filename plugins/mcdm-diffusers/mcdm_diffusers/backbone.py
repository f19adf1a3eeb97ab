"""The network that SD-family denoisers share: one UNet2DConditionModel with its CLIP text encoder and tokenizer.

Every model folder that names the same UNet and text encoder weights gets the same :class:`Backbone` (a prior, a
prompt model and several ControlNet models of one composition load it once), and :meth:`Backbone.eps` evaluates
many (prompt, ControlNet) entries in one UNet batch.
"""

from __future__ import annotations

import contextlib
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from mcdm.errors import CheckpointError
from mcdm.readers import DIFFUSERS_WEIGHTS, read_json_object, safetensors_weights
from mcdm_diffusers.prompt import decode_prompt

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CACHED_PROMPTS = 16  # condition batches whose text encodings are kept (the same tensors come back every step)
_SHARED: "weakref.WeakValueDictionary[tuple, Backbone]" = weakref.WeakValueDictionary()


@dataclass
class Entry:
    """One evaluation in a batched call: a prompt batch (None: the empty prompt) and an optional ControlNet."""

    prompt: torch.Tensor | None = None
    controlnet: torch.nn.Module | None = None
    image: torch.Tensor | None = None  # the control image (B, 3, H, W) in [0, 1]
    scale: float = 1.0


class Backbone(torch.nn.Module):
    def __init__(self, unet, text_encoder, tokenizer, offload: bool = False):
        super().__init__()
        self.unet = unet
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.offload = offload
        self._encoded: OrderedDict[object, tuple[torch.Tensor | None, int, torch.Tensor]] = OrderedDict()

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, entries: list[Entry]) -> list[torch.Tensor]:
        """The UNet's output for every entry at x_t: the ControlNets one by one, then one UNet call for all."""
        dtype = self.unet.dtype
        x = x_t.to(dtype)
        states = [self.encode(entry.prompt, x.shape[0], x.device).to(dtype) for entry in entries]
        residuals = []
        for entry, state in zip(entries, states):
            if entry.controlnet is None:
                residuals.append(None)
                continue
            with self.visiting(entry.controlnet, x.device):
                down, mid = entry.controlnet(x, t, encoder_hidden_states=state, controlnet_cond=entry.image.to(dtype),
                                             conditioning_scale=entry.scale, return_dict=False)
            residuals.append((list(down), mid))
        extra = {}
        template = next((r for r in residuals if r is not None), None)
        if template is not None:  # entries without a ControlNet add zero residuals: x + 0 is x exactly
            zeros = ([torch.zeros_like(d) for d in template[0]], torch.zeros_like(template[1]))
            filled = [zeros if r is None else r for r in residuals]
            extra = {"down_block_additional_residuals": [torch.cat(level) for level in zip(*(f[0] for f in filled))],
                     "mid_block_additional_residual": torch.cat([f[1] for f in filled])}
        with self.visiting(self.unet, x.device):
            out = self.unet(x.repeat(len(entries), 1, 1, 1), t, encoder_hidden_states=torch.cat(states), **extra).sample
        return list(out.chunk(len(entries)))

    def encode(self, prompts: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
        """CLIP states (batch, L, width) of a prompt batch; a batch is encoded once and reused while unchanged."""
        key = ("empty", batch) if prompts is None else id(prompts)
        hit = self._encoded.get(key)
        if hit is not None and hit[0] is prompts and (prompts is None or hit[1] == prompts._version):
            self._encoded.move_to_end(key)
            return hit[2]
        texts = [""] * batch if prompts is None else [decode_prompt(row) for row in prompts]
        ids = self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True,
                             return_tensors="pt").input_ids
        with self.visiting(self.text_encoder, device):
            states = self.text_encoder(ids.to(device))[0]
        self._encoded[key] = (prompts, 0 if prompts is None else prompts._version, states)
        while len(self._encoded) > CACHED_PROMPTS:
            self._encoded.popitem(last=False)
        return states

    @contextlib.contextmanager
    def visiting(self, module: torch.nn.Module, device: torch.device):
        """CPU offload: a network visits the sampler's device only for its call (no-op without offload)."""
        if not self.offload or device.type == "cpu":
            yield
            return
        module.to(device)
        try:
            yield
        finally:
            module.to("cpu")


def shared_backbone(folder: Path, dtype: str, offload: bool) -> Backbone:
    """The backbone of a model folder's unet/, text_encoder/ and tokenizer/, loaded once per weights and dtype."""
    unet_files = safetensors_weights(folder / "unet", DIFFUSERS_WEIGHTS, CheckpointError)
    text_files = safetensors_weights(folder / "text_encoder", "model", CheckpointError)
    if not (folder / "tokenizer").is_dir():
        raise CheckpointError(f"{str(folder / 'tokenizer')!r} does not exist: the prompt's tokenizer is missing")
    # resolved: folders whose files link to the same weights (a Hugging Face cache) share one backbone
    files = (*unet_files, *text_files, *sorted((folder / "tokenizer").iterdir()))
    key = (*(str(p.resolve()) for p in files), dtype, offload)
    backbone = _SHARED.get(key)
    if backbone is None:
        backbone = _load(folder, DTYPES[dtype], offload)
        _SHARED[key] = backbone
    return backbone


def _load(folder: Path, dtype: torch.dtype, offload: bool) -> Backbone:
    from diffusers import UNet2DConditionModel

    try:
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError as exc:
        raise CheckpointError(f"{str(folder)!r} needs transformers for its text encoder: "
                              "pip install 'mcdm-diffusers[sd]'") from exc
    architectures = read_json_object(folder / "text_encoder" / "config.json", CheckpointError).get("architectures")
    if architectures != ["CLIPTextModel"]:
        raise CheckpointError(f"{str(folder / 'text_encoder')!r} is a {architectures}, not a CLIPTextModel")
    read_json_object(folder / "unet" / "config.json", CheckpointError)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet", use_safetensors=True, torch_dtype=dtype)
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", use_safetensors=True, torch_dtype=dtype)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    width = int(text_encoder.config.hidden_size)
    if int(unet.config.cross_attention_dim) != width:
        raise CheckpointError(f"{str(folder / 'unet')!r} cross-attends to {unet.config.cross_attention_dim}-wide states "
                              f"but its text encoder is {width} wide")
    frozen = [m.eval().requires_grad_(False) for m in (unet, text_encoder)]
    return Backbone(*frozen, tokenizer, offload=offload)
