"""Tiny SD-family folders built from configs and saved as a user's are (tests and the batching benchmark).

A pipeline folder (unet/, text_encoder/, tokenizer/ as vocab.json + merges.txt, vae/, scheduler/, model_index.json)
and ControlNet folders, random and small enough to sample on a CPU in a fraction of a second per step.
"""

import json
from pathlib import Path

import torch

SAMPLE = 16  # latent side; the VAE's scale is 2, so images are 32 x 32
SD_SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
               "beta_end": 0.012, "skip_prk_steps": True}


def _byte_characters() -> list[str]:
    """GPT-2's byte-to-unicode table, the alphabet of CLIP's byte-level BPE."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def write_tokenizer(folder: Path) -> int:
    """A CLIP tokenizer of single bytes (and one merge), as vocab.json + merges.txt; returns the vocabulary size."""
    chars = _byte_characters()
    vocab = {c: i for i, c in enumerate([*chars, *(c + "</w>" for c in chars), "re", "<|startoftext|>",
                                         "<|endoftext|>"])}
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\nr e\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77}))
    return len(vocab)


def write_pipeline(folder: Path, *, seed: int = 0, vae_seed: int | None = None, schedule: dict | None = None,
                   sample: int = SAMPLE) -> Path:
    """unet/, text_encoder/, tokenizer/, vae/ (scale 2), scheduler/ and model_index.json, as SD 1.5's folder."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    UNet2DConditionModel(
        sample_size=sample, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
    ).save_pretrained(folder / "unet")
    vocab = write_tokenizer(folder / "tokenizer")
    CLIPTextModel(CLIPTextConfig(vocab_size=vocab, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                 num_attention_heads=4, max_position_embeddings=77, bos_token_id=vocab - 2,
                                 eos_token_id=vocab - 1, pad_token_id=vocab - 1)).save_pretrained(folder / "text_encoder")
    torch.manual_seed(seed if vae_seed is None else vae_seed)
    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                  layers_per_block=1, norm_num_groups=4, sample_size=2 * sample).save_pretrained(folder / "vae")
    PNDMScheduler(**(schedule or SD_SCHEDULE)).save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return folder


def write_controlnet(folder: Path, pipeline: Path, *, seed: int, conditioning_channels: int = 3) -> Path:
    """A ControlNet of the pipeline's UNet whose zero-initialised convolutions are made random (so it speaks)."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(pipeline / "unet", use_safetensors=True)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16),
                                           conditioning_channels=conditioning_channels)
    with torch.no_grad():
        for parameter in controlnet.parameters():
            if not parameter.any():
                parameter.normal_(0, 0.3)
    controlnet.save_pretrained(folder)
    return folder
