"""mcdm-text: the ``text`` modality (captions), the ``unet_text`` denoiser and the ``clip`` trainer, an mcdm plugin.

Importing this module imports neither torch nor open_clip: the modality, denoiser and trainer load on first use.
"""

from mcdm.hookspecs import hookimpl

__version__ = "0.1.0"

MODALITY_NAME = "text"
DENOISER_TYPE = "unet_text"  # registered names must be identifiers, so not "unet-text"
TRAINER_NAME = "clip"


@hookimpl
def register_modalities(register):
    register(MODALITY_NAME, _load_modality, summary="a caption, cross-attended through a frozen CLIP text tower")


@hookimpl
def register_denoisers(register):
    register(DENOISER_TYPE, _load_denoiser, summary="diffusers UNet2DConditionModel + frozen open_clip text tower")


@hookimpl
def register_trainers(register):
    register(TRAINER_NAME, _load_trainer, summary="the small CLIP whose frozen text tower the text denoiser reads")


def _load_modality():
    from mcdm_text.modality import TextModality

    return TextModality()


def _load_denoiser():
    from mcdm_text.denoiser import TextUNetDenoiser

    return TextUNetDenoiser


def _load_trainer():
    from mcdm.training.trainer import Trainer
    from mcdm_text.train_clip import ClipTrainConfig, run

    return Trainer(schema=ClipTrainConfig, run=run)
