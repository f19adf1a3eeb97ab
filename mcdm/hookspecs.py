"""The pluggy hook specifications: the whole contract a plugin implements.

A plugin module defines functions decorated with ``@mcdm.hookimpl`` whose names match the specs
below. Hooks receive a ``register`` callback so the host validates names and detects duplicates.
"""

import pluggy

PROJECT_NAME = "mcdm"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_modalities(register):
    """Register modalities: ``register(name, load, summary="")``, where ``load()`` returns a Modality.

    ``load`` is called only when the modality is used, so a plugin imports torch lazily. The Modality's
    ``input_spec`` (``mcdm.modality.InputSpec``) chooses its input component in ``mcdm serve``'s page.
    """


@hookspec
def register_denoisers(register):
    """Register denoiser architectures: ``register(name, load, summary="")``; ``load()`` returns a Denoiser class.

    A checkpoint names its denoiser type, and loading looks the class up here (never an import path from a file).
    """


@hookspec
def register_trainers(register):
    """Register trainers: ``register(name, load, summary="")``; ``load()`` returns an ``mcdm.training.trainer.Trainer``.

    ``mcdm train NAME CONFIG [KEY=VALUE]... [--resume]`` runs it; the engine's own are ``denoiser`` and ``judges``.
    """
