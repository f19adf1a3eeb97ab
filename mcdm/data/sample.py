"""The record every face dataset in mcdm yields, synthetic or read from disk."""

from dataclasses import dataclass, field

import numpy as np

from mcdm.data.attributes import FaceAttributes


@dataclass
class FaceSample:
    """One face and its modalities, all at the image's size.

    ``image`` is HxWx3 uint8 RGB; ``mask`` HxW uint8 label ids (``mcdm.data.labels``); ``sketch`` HxW uint8 with
    255 on an edge. Real datasets may lack a modality (``None``, or no captions); only synthetic faces carry
    their ``attributes``. ``name`` says where the sample came from (a file stem, or ``synthfaces/train/12``).
    """

    image: np.ndarray
    mask: np.ndarray | None
    sketch: np.ndarray | None
    attributes: FaceAttributes | None = None
    captions: list[str] = field(default_factory=list)
    name: str = ""
