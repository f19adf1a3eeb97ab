"""The engine's denoiser bases: one UNet each, whose x_t they denoise; user errors are mcdm's own."""

import pytest
import torch

from mcdm.cross_attention_denoiser import CrossAttentionDenoiser
from mcdm.embedding_denoiser import EmbeddingUNetDenoiser
from mcdm.errors import ConditionError
from mcdm.unet_denoiser import ConcatUNetDenoiser, UNetDenoiser

SMALL = {"sample_size": 8, "image_channels": 2, "block_out_channels": (8, 16), "layers_per_block": 1}


@pytest.mark.parametrize("build", [
    lambda: ConcatUNetDenoiser.build(cond_channels=1, attention=False, **SMALL),
    lambda: EmbeddingUNetDenoiser.build(condition_dim=3, attention=False, **SMALL),
    lambda: CrossAttentionDenoiser.build(vocab_size=5, context_length=4, width=8, attention_head_dim=2, **SMALL),
])
def test_every_base_takes_its_sample_size_and_channels_from_its_unet(build):
    denoiser = build()
    assert isinstance(denoiser, UNetDenoiser)
    assert (denoiser.sample_size, denoiser.image_channels) == (8, 2)
    assert next(iter(denoiser.state_dict())).startswith("unet.")  # the UNet's tensors first, as saved folders hold


def test_a_concatenating_denoiser_without_its_condition_is_a_condition_error():
    denoiser = ConcatUNetDenoiser.build(cond_channels=1, attention=False, **SMALL)
    with pytest.raises(ConditionError, match="unet denoiser needs a condition with 1 channels, got none"):
        denoiser(torch.zeros(1, 2, 8, 8), torch.tensor(1), None)
