"""mcdm plugin: the ``tags`` modality and its ``unet_tags`` denoiser. Importing it is cheap (no torch)."""

from mcdm.hookspecs import hookimpl

DENOISER_TYPE = "unet_tags"


def _modality():
    from mcdm_tags.modality import TagsModality

    return TagsModality()


def _denoiser():
    from mcdm_tags.denoiser import TagsUNetDenoiser

    return TagsUNetDenoiser


@hookimpl
def register_modalities(register):
    register("tags", _modality, summary="attribute tags such as 'female, eyeglasses, hat', read as a token sequence")


@hookimpl
def register_denoisers(register):
    register(DENOISER_TYPE, _denoiser, summary="UNet2DConditionModel cross-attending to learned tag embeddings")
