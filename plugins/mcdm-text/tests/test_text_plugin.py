"""The plugin as mcdm sees it: found through entry points, light to import, and conformant."""

import subprocess
import sys

from mcdm.testing import ModalityConformance
from text_fixtures import one_thread, plugins  # noqa: F401  (fixtures)


class TestTextConformance(ModalityConformance):
    modality_name = "text"

    def valid_inputs(self):
        return ["This woman has long blond hair.", "The man is bald and wears eyeglasses."]


def test_importing_the_plugin_imports_neither_torch_nor_open_clip():
    code = (
        "import sys, mcdm_text\n"
        "heavy = [m for m in ('torch', 'open_clip', 'diffusers', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_entry_point_registers_the_modality_and_its_denoiser(plugins):
    from mcdm_text.denoiser import TextUNetDenoiser
    from mcdm_text.modality import TextModality

    described = plugins.describe()
    assert described["modalities"]["text"]["plugin"] == "text"
    assert described["denoisers"]["unet_text"]["plugin"] == "text"
    modality = plugins.modality("text")
    assert isinstance(modality, TextModality)
    assert plugins.denoiser_class(modality.denoiser_type) is TextUNetDenoiser
    assert TextUNetDenoiser.type_name == modality.denoiser_type == "unet_text"
