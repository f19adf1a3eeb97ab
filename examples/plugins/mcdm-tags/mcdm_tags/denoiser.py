"""The ``unet_tags`` denoiser: mcdm's cross-attention UNet, registered under this plugin's own type name."""

from mcdm.cross_attention_denoiser import CrossAttentionDenoiser
from mcdm_tags import DENOISER_TYPE


class TagsUNetDenoiser(CrossAttentionDenoiser):
    type_name = DENOISER_TYPE
