"""mcdm plugin: the ``hair`` modality and its ``unet_hair`` denoiser. Importing it is cheap (no torch)."""

from mcdm.hookspecs import hookimpl

DENOISER_TYPE = "unet_hair"


def _modality():
    from mcdm_hair.modality import HairModality

    return HairModality()


def _denoiser():
    from mcdm_hair.denoiser import HairUNetDenoiser

    return HairUNetDenoiser


@hookimpl
def register_modalities(register):
    register("hair", _modality, summary="the hair colour (black, brown, blond, red or gray), one label per image")


@hookimpl
def register_denoisers(register):
    register(DENOISER_TYPE, _denoiser, summary="UNet2DModel with a class embedding of the hair colour label")
