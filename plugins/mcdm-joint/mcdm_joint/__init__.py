"""mcdm plugin: the ``joint`` modality and its ``unet_joint`` denoiser, the evaluation's oracle.

The claim mcdm is measured against: a model trained on *paired* data, with the sketch and the mask
concatenated to x_t and the caption cross-attended, of the same size and training budget as one
modality model. Its parts (the sketch, segmentation and text modalities, the ``unet_text`` denoiser) come
from the plugin registry, never from an import of their plugins. Importing this module is cheap: the
classes load on first use.
"""

from mcdm.hookspecs import hookimpl

MODALITY_NAME = "joint"
DENOISER_TYPE = "unet_joint"


@hookimpl
def register_modalities(register):
    register(MODALITY_NAME, _load_modality, summary="sketch, mask and caption together (the paired-data oracle)")


@hookimpl
def register_denoisers(register):
    register(DENOISER_TYPE, _load_denoiser, summary="unet_text with the image-like conditions concatenated to x_t")


def _load_modality():
    from mcdm.plugins import make_plugin_manager
    from mcdm_joint.modality import PARTS, JointModality

    plugins = make_plugin_manager()
    return JointModality({name: plugins.modality(name) for name in PARTS})


def _load_denoiser():
    from mcdm.plugins import make_plugin_manager
    from mcdm_joint.denoiser import TEXT_DENOISER, joint_denoiser_class

    return joint_denoiser_class(make_plugin_manager().denoiser_class(TEXT_DENOISER))
