"""Built-in denoiser architectures, registered as the engine's own plugin.

``unet``: a diffusers ``UNet2DModel`` whose condition (if any) is concatenated to ``x_t`` along channels.
An unconditional prior is the same architecture with no condition channels.
"""

from __future__ import annotations

from mcdm.hookspecs import hookimpl


@hookimpl
def register_denoisers(register):
    register("unet", _load_unet_denoiser, summary="diffusers UNet2DModel, condition concatenated to x_t")


def _load_unet_denoiser():
    from mcdm.unet_denoiser import ConcatUNetDenoiser

    return ConcatUNetDenoiser
