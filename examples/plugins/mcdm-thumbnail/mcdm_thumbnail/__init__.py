"""mcdm plugin: the ``thumbnail`` modality. Importing it is cheap (no torch): the modality loads on first use."""

from mcdm.hookspecs import hookimpl


def _load():
    from mcdm_thumbnail.modality import ThumbnailModality

    return ThumbnailModality()


@hookimpl
def register_modalities(register):
    register("thumbnail", _load, summary="the face's coarse colour layout, from any square RGB image")
