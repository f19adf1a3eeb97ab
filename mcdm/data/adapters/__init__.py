"""Readers for real face datasets on a user's disk, yielding the same ``FaceSample`` records as synthfaces."""

from mcdm.data.adapters.base import FaceReader, OnError
from mcdm.data.adapters.celebamask_hq import CelebAMaskHQ
from mcdm.data.adapters.folder import FolderFaces
from mcdm.data.adapters.mm_celeba_hq import MMCelebAHQ
from mcdm.data.adapters.safe_pickle import read_filenames_pickle

__all__ = ["CelebAMaskHQ", "FaceReader", "FolderFaces", "MMCelebAHQ", "OnError", "read_filenames_pickle"]
