"""Test plugin: four grey-map modalities (toy_a .. toy_d) on the built-in ``unet`` denoiser.

Importing this module must not import torch; the modality class loads on first use.
"""

from functools import partial

from mcdm.hookspecs import hookimpl

TOY_MODALITIES = ("toy_a", "toy_b", "toy_c", "toy_d")


def _load(name):
    from mcdm_toy.modality import GreyMapModality

    return GreyMapModality(name)


@hookimpl
def register_modalities(register):
    for name in TOY_MODALITIES:
        register(name, partial(_load, name), summary="a grey map concatenated to x_t (test plugin)")
