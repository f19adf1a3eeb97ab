"""Fixtures of the adapter's tests: tiny folders (mcdm_diffusers.testing) written once per session.

Test modules import the fixtures they use from here (not a conftest.py: see mcdm-text's text_fixtures).
"""

import pytest
import torch

from mcdm_diffusers.testing import write_controlnet, write_pipeline


@pytest.fixture(scope="session")
def sd_folders(tmp_path_factory):
    """One tiny pipeline and mcdm model folders for its prior, prompt, sketch and segmentation ControlNets."""
    from mcdm_diffusers.folders import write_model_folder

    root = tmp_path_factory.mktemp("sd")
    pipeline = write_pipeline(root / "pipeline")
    write_controlnet(root / "controlnet-scribble", pipeline, seed=1)
    write_controlnet(root / "controlnet-seg", pipeline, seed=2)
    write_model_folder(root / "prior", pipeline)
    write_model_folder(root / "prompt", pipeline, modality="prompt")
    write_model_folder(root / "sketch", pipeline, modality="sketch", controlnet=root / "controlnet-scribble")
    write_model_folder(root / "segmentation", pipeline, modality="segmentation", controlnet=root / "controlnet-seg",
                       control="palette")
    return root


@pytest.fixture(scope="session")
def plugins():
    from mcdm.plugins import make_plugin_manager

    return make_plugin_manager(strict=True)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
