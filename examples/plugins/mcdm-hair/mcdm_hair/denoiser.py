"""The ``unet_hair`` denoiser: mcdm's class-embedding UNet, registered under this plugin's own type name."""

from mcdm.embedding_denoiser import EmbeddingUNetDenoiser
from mcdm_hair import DENOISER_TYPE


class HairUNetDenoiser(EmbeddingUNetDenoiser):
    type_name = DENOISER_TYPE
