"""Plugin discovery: built-ins, entry-point plugins, broken plugins, misspelt hooks, and a torch-free --help."""

import importlib.metadata
import json
import subprocess
import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner

from mcdm.cli import cli
from mcdm.errors import PluginError, UnknownNameError
from mcdm.hookspecs import hookimpl
from mcdm.plugins import make_plugin_manager


def test_builtin_denoiser_is_registered_without_entry_points():
    plugins = make_plugin_manager(entry_points=False)
    assert "unet" in plugins.denoisers
    assert plugins.modalities == {}


def test_entry_point_plugin_is_discovered_and_listed():
    """The toy plugin is installed only as a distribution with an entry point; mcdm has no reference to it."""
    plugins = make_plugin_manager(strict=True)
    assert {"toy_a", "toy_b", "toy_c", "toy_d"} <= set(plugins.modalities)
    assert plugins.modalities["toy_a"].plugin == "toy"
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert listing["modalities"]["toy_a"]["plugin"] == "toy"
    assert "unet" in listing["denoisers"]
    assert listing["broken"] == {}


def test_unknown_modality_lists_what_is_installed():
    with pytest.raises(UnknownNameError, match="unknown modality 'nope'; installed: .*toy_a"):
        make_plugin_manager().modality("nope")


def fake_entry_points(monkeypatch, *extra, first=False):
    """Add entry points to the installed ones: after them, or (``first``) found before them."""
    real = importlib.metadata.entry_points

    def entry_points(group=None, **kwargs):
        found = list(real(group=group, **kwargs))
        added = [ep for ep in extra if ep.group == group]
        return added + found if first else found + added

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def install_plugin(monkeypatch, name, register, *, hook="register_modalities", first=False):
    """An entry-point plugin ``name``: a module made here whose one hook, ``hook``, is the function ``register``
    (it takes the hook's ``register`` callback)."""
    module = types.ModuleType(f"mcdm_test_{name}")
    setattr(module, hook, hookimpl(register))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    fake_entry_points(monkeypatch, importlib.metadata.EntryPoint(name=name, value=module.__name__, group="mcdm"),
                      first=first)


def test_plugin_that_raises_on_import_is_skipped_by_name_or_fatal_when_strict(monkeypatch):
    broken = importlib.metadata.EntryPoint(name="broken", value="mcdm_no_such_module_xyz", group="mcdm")
    fake_entry_points(monkeypatch, broken)
    with pytest.warns(UserWarning, match="plugin 'broken'"):
        plugins = make_plugin_manager(strict=False)
    assert "broken" in plugins.broken and "ModuleNotFoundError" in plugins.broken["broken"]
    assert "toy_a" in plugins.modalities  # the healthy plugins still load
    with pytest.raises(PluginError, match="plugin 'broken'.*failed to load"):
        make_plugin_manager(strict=True)
    monkeypatch.setenv("MCDM_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin 'broken'"):
        make_plugin_manager()


def test_misspelt_hook_fails_loudly(monkeypatch):
    install_plugin(monkeypatch, "misspelt", lambda register: None, hook="register_modalitys")  # misspelt on purpose
    with pytest.raises(PluginError, match="plugin 'misspelt'.*register_modalitys"):
        make_plugin_manager(strict=True)
    with pytest.warns(UserWarning):
        plugins = make_plugin_manager(strict=False)
    assert "misspelt" in plugins.broken


def test_duplicate_modality_name_is_refused_naming_both_plugins(monkeypatch):
    install_plugin(monkeypatch, "dup", lambda register: register("toy_a", lambda: None))
    # neither is one of mcdm's own plugins: the first by name keeps it
    with pytest.raises(PluginError, match="'toy_a' is registered twice: by 'dup' \\(kept\\) and by 'toy' \\(refused\\)"):
        make_plugin_manager(strict=True)


def test_a_plugin_cannot_take_over_a_built_in_modality(monkeypatch):
    """A plugin found before mcdm-sketch that registers "sketch" is refused; the real sketch plugin keeps working."""
    install_plugin(monkeypatch, "aaa_impostor", lambda register: register("sketch", lambda: None), first=True)
    with pytest.warns(UserWarning, match="'sketch' is registered twice: by 'sketch' \\(kept\\) and by 'aaa_impostor'"):
        plugins = make_plugin_manager(strict=False)
    assert plugins.modalities["sketch"].plugin == "sketch" and "aaa_impostor" in plugins.broken
    assert plugins.modality("sketch").prepare(np.zeros((16, 16), np.uint8), size=16).shape == (1, 16, 16)


def test_a_registration_that_loads_the_wrong_thing_names_its_plugin(monkeypatch):
    install_plugin(monkeypatch, "wrong", lambda register: register("nothing_here", lambda: None))
    plugins = make_plugin_manager(strict=True)
    with pytest.raises(PluginError, match="plugin 'wrong' registered modality 'nothing_here' as None, not a Modality"):
        plugins.modality("nothing_here")


def test_a_plugin_registers_a_trainer_that_mcdm_train_runs_and_lists(monkeypatch, tmp_path):
    from dataclasses import dataclass
    from pathlib import Path

    from mcdm.config_reference import key
    from mcdm.training.trainer import Trainer, TrainingResult

    @dataclass
    class CountConfig:
        out: str = key("", "where the count goes")
        steps: int = key(1, "how far to count")

    def run(config, resume):
        Path(config.out).write_text(str(config.steps))
        return TrainingResult(Path(config.out), f"counted to {config.steps}{' again' if resume else ''}")

    def register_trainers(register):
        register("counter", lambda: Trainer(schema=CountConfig, run=run), summary="counts")
        register("broken_counter", lambda: run)

    install_plugin(monkeypatch, "counter", register_trainers, hook="register_trainers")
    yaml = tmp_path / "count.yaml"
    yaml.write_text(f"out: {tmp_path / 'count.txt'}\n")
    result = CliRunner().invoke(cli, ["train", "counter", str(yaml), "steps=3", "--resume"])
    assert result.exit_code == 0, result.output
    assert result.output == "counted to 3 again\n" and (tmp_path / "count.txt").read_text() == "3"
    assert "| `steps` | int | `1` | how far to count |" in CliRunner().invoke(cli, ["train", "counter",
                                                                              "--help-config"]).output
    listing = json.loads(CliRunner().invoke(cli, ["plugins"]).output)
    assert listing["trainers"]["counter"] == {"plugin": "counter", "summary": "counts"}
    assert {"denoiser", "judges", "clip"} <= set(listing["trainers"])
    with pytest.raises(PluginError, match="registered trainer 'broken_counter' as <function .*, not an mcdm.training"):
        make_plugin_manager(strict=True).trainer("broken_counter")


def test_a_plugin_that_exits_at_import_is_reported_and_the_cli_still_works(monkeypatch, tmp_path):
    """sys.exit() inside a plugin's import used to end `mcdm plugins` with exit 3 and no output."""
    (tmp_path / "mcdm_test_exits.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_entry_points(monkeypatch, importlib.metadata.EntryPoint(name="exits", value="mcdm_test_exits", group="mcdm"))
    with pytest.warns(UserWarning, match="plugin 'exits'.*SystemExit: 3"):
        result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert "SystemExit" in listing["broken"]["exits"] and "sketch" in listing["modalities"]


def test_plugin_whose_registration_raises_is_skipped(monkeypatch):
    def register_modalities(register):
        raise RuntimeError("boom")

    install_plugin(monkeypatch, "raises", register_modalities)
    with pytest.warns(UserWarning, match="boom"):
        plugins = make_plugin_manager(strict=False)
    assert "raises" in plugins.broken


def test_load_plugins_env_selects_entry_points(monkeypatch):
    monkeypatch.setenv("MCDM_LOAD_PLUGINS", "")
    assert "toy_a" not in make_plugin_manager().modalities
    monkeypatch.setenv("MCDM_LOAD_PLUGINS", "toy")
    assert "toy_a" in make_plugin_manager().modalities


def test_help_and_plugin_import_do_not_import_torch():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from mcdm.cli import cli\n"
        "import mcdm_toy\n"
        "from mcdm.plugins import make_plugin_manager\n"
        "make_plugin_manager(strict=True)\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'cv2', 'controlnet_aux', 'open_clip') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
