"""mcdm plugin: the ``segmentation`` modality. Importing it is cheap: the modality loads on first use."""

from mcdm.hookspecs import hookimpl


def _load():
    from mcdm_segmentation.modality import SegmentationModality

    return SegmentationModality()


@hookimpl
def register_modalities(register):
    register("segmentation", _load, summary="a face-part label map (CelebAMask-HQ ids or palette), may be partial")
