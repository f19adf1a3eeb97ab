"""mcdm plugin: the ``sketch`` modality. Importing it is cheap: the modality loads on first use."""

from mcdm.hookspecs import hookimpl


def _load():
    from mcdm_sketch.modality import SketchModality

    return SketchModality()


@hookimpl
def register_modalities(register):
    register("sketch", _load, summary="a line drawing (any size, either polarity) or a photo turned into edges")
