"""The engine's own trainers, registered through the same hook as a plugin's (the text plugin adds ``clip``)."""

from __future__ import annotations

from mcdm.hookspecs import hookimpl


@hookimpl
def register_trainers(register):
    register("denoiser", _denoiser, summary="one modality's denoiser, or the unconditional prior (accelerate)")
    register("judges", _judges, summary="the parsing and attribute judges that evaluation scores faces with")
    register("vae", _vae, summary="the small AutoencoderKL whose latents latent models are trained in (accelerate)")


def _denoiser():
    from mcdm.train import TrainConfig, run

    from mcdm.training.trainer import Trainer

    return Trainer(schema=TrainConfig, run=run)


def _judges():
    from mcdm.eval.train_judges import JudgeTrainConfig, run

    from mcdm.training.trainer import Trainer

    return Trainer(schema=JudgeTrainConfig, run=run)


def _vae():
    from mcdm.train_vae import VaeTrainConfig, run

    from mcdm.training.trainer import Trainer

    return Trainer(schema=VaeTrainConfig, run=run)
