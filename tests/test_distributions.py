"""The table of what the built-in distributions provide: true of the installed plugins, and used by the errors."""

import importlib.metadata
import json
from pathlib import Path

import pytest

from mcdm.checkpoint import MANIFEST, load_model
from mcdm.distributions import BUILTIN, provider
from mcdm.errors import UnknownNameError
from mcdm.plugins import ENTRY_POINT_GROUP, make_plugin_manager


def canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def test_the_table_names_what_each_installed_builtin_plugin_registers():
    plugins = make_plugin_manager(strict=True)
    dist_of = {ep.name: canonical(ep.dist.name) for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    registered = {}
    for kind, table in (("modality", plugins.modalities), ("denoiser type", plugins.denoisers),
                        ("trainer", plugins.trainers)):
        for name, registration in table.items():
            dist = dist_of.get(registration.plugin)
            if dist in BUILTIN:
                registered.setdefault(dist, {}).setdefault(kind, set()).add(name)
    expected = {dist: {kind: set(names) for kind, names in provides.items() if kind != "model"}
                for dist, provides in BUILTIN.items() if set(provides) != {"model"}}
    assert registered == expected


@pytest.mark.parametrize("kind, name, dist", [
    ("modality", "text", "mcdm-text"), ("denoiser type", "unet_text", "mcdm-text"), ("modality", "sketch", "mcdm-sketch"),
    ("modality", "segmentation", "mcdm-segmentation"), ("denoiser type", "unet_joint", "mcdm-joint"),
    ("trainer", "clip", "mcdm-text"),
])
def test_a_missing_builtin_name_says_which_distribution_to_install(kind, name, dist):
    plugins = make_plugin_manager(entry_points=False)
    load = {"modality": plugins.modality, "trainer": plugins.trainer}.get(kind, plugins.denoiser_class)
    hint = f"; install {dist}, which provides it"
    with pytest.raises(UnknownNameError, match=f"unknown {kind} '{name}'; installed: .*{hint}"):
        load(name)


def test_a_name_nothing_built_in_provides_gets_no_hint():
    assert provider("modality", "thumbnail") is None
    with pytest.raises(UnknownNameError) as raised:
        make_plugin_manager(entry_points=False).modality("thumbnail")
    assert str(raised.value) == "unknown modality 'thumbnail'; installed: none"


def test_a_model_folder_of_an_uninstalled_denoiser_type_names_its_distribution(make_model):
    folder = make_model(None)
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "denoiser": "unet_text"}))
    with pytest.raises(UnknownNameError, match="unknown denoiser type 'unet_text'; installed: unet; install mcdm-text"):
        load_model(folder, make_plugin_manager(entry_points=False))


def test_the_models_distribution_carries_the_checkouts_shipped_folders():
    root = Path(__file__).resolve().parents[1]
    package = root / "models" / "mcdm-models-synthfaces" / "mcdm_models_synthfaces"
    for name in BUILTIN["mcdm-models-synthfaces"]["model"]:
        assert (package / name).resolve() == (root / "pretrained" / name).resolve()
