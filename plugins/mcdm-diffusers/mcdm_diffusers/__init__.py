"""mcdm-diffusers: the Stable Diffusion family as mcdm models, an mcdm plugin.

``prompt``: a text prompt, read by the folder's own CLIP tokenizer and text encoder. ``sd_unet``: a
``UNet2DConditionModel`` reading a prompt (the empty prompt is its null condition and the shared prior).
``sd_controlnet``: the same UNet plus a ``ControlNetModel`` reading a control image made from another modality's
condition (a sketch, a segmentation map). Importing this module imports neither torch nor transformers.
"""

from mcdm.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_modalities(register):
    register("prompt", _load_prompt, summary="a text prompt for a Stable Diffusion-family UNet (its own tokenizer)")


@hookimpl
def register_denoisers(register):
    register("sd_unet", _load_unet, summary="diffusers UNet2DConditionModel + CLIP text encoder, in a VAE's latents")
    register("sd_controlnet", _load_controlnet, summary="the sd_unet UNet steered by a diffusers ControlNetModel")


def _load_prompt():
    from mcdm_diffusers.prompt import PromptModality

    return PromptModality()


def _load_unet():
    from mcdm_diffusers.denoisers import SDUNetDenoiser

    return SDUNetDenoiser


def _load_controlnet():
    from mcdm_diffusers.denoisers import SDControlNetDenoiser

    return SDControlNetDenoiser
