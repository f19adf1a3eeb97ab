"""Finding a composition by name: the variable (a parent or the folder itself), model packages, the checkout."""

import importlib.metadata
import sys

import pytest

from mcdm import pretrained
from mcdm.errors import CheckpointError
from mcdm.pretrained import ENTRY_POINT_GROUP, resolve


@pytest.fixture
def no_checkout(monkeypatch, tmp_path):
    """Look up names as an installed mcdm does: no source checkout, no variable."""
    monkeypatch.setattr(pretrained, "REPO_PRETRAINED", tmp_path / "no-checkout" / "pretrained")
    monkeypatch.delenv("MCDM_PRETRAINED_DIR", raising=False)


@pytest.fixture
def model_package(monkeypatch, tmp_path):
    """An installed model package carrying a folder ``packaged-32``: a module and its entry point."""
    package = tmp_path / "site" / "fake_models"
    (package / "packaged-32").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "fake_models", raising=False)
    ep = importlib.metadata.EntryPoint(name="fake", value="fake_models", group=ENTRY_POINT_GROUP)
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None, **kw: [ep] if group == ENTRY_POINT_GROUP else real(group=group, **kw))
    return package


def test_the_checkout_provides_the_shipped_models(monkeypatch):
    monkeypatch.delenv("MCDM_PRETRAINED_DIR", raising=False)
    assert resolve("synthfaces-32") == pretrained.REPO_PRETRAINED / "synthfaces-32"


def test_a_missing_name_lists_every_place_looked_and_the_variable(no_checkout):
    with pytest.raises(CheckpointError) as raised:
        resolve("synthfaces-32")
    assert str(raised.value) == (
        "no model folder 'synthfaces-32'; looked in: synthfaces-32, $MCDM_PRETRAINED_DIR (not set), "
        "installed model packages (none); install mcdm-models-synthfaces, which provides it "
        "(mcdm[all] brings every built-in one)")


def test_the_variable_may_name_the_folder_or_its_parent(no_checkout, monkeypatch, tmp_path):
    folder = tmp_path / "copy" / "synthfaces-32"
    folder.mkdir(parents=True)
    for value in (folder.parent, folder):
        monkeypatch.setenv("MCDM_PRETRAINED_DIR", str(value))
        assert resolve("synthfaces-32") == folder
    # the variable names synthfaces-32 itself: nothing else is looked for beside it
    looked = rf"looked in: judges-32, {folder / 'judges-32'} \(\$MCDM_PRETRAINED_DIR/judges-32\)"
    with pytest.raises(CheckpointError, match=looked):
        resolve("judges-32")


def test_an_installed_model_package_is_found_with_no_variable(no_checkout, model_package):
    assert resolve("packaged-32") == model_package / "packaged-32"
    with pytest.raises(CheckpointError, match=rf"looked in: other, .*{model_package / 'other'} \(installed by fake\)"):
        resolve("other")


def test_the_variable_comes_before_packages_and_packages_before_the_checkout(model_package, monkeypatch, tmp_path):
    checkout = tmp_path / "checkout" / "pretrained"
    (checkout / "packaged-32").mkdir(parents=True)
    monkeypatch.setattr(pretrained, "REPO_PRETRAINED", checkout)
    monkeypatch.delenv("MCDM_PRETRAINED_DIR", raising=False)
    assert resolve("packaged-32") == model_package / "packaged-32"
    (tmp_path / "mine" / "packaged-32").mkdir(parents=True)
    monkeypatch.setenv("MCDM_PRETRAINED_DIR", str(tmp_path / "mine"))
    assert resolve("packaged-32") == tmp_path / "mine" / "packaged-32"


def test_the_places_are_listed_in_the_order_they_are_looked_in(monkeypatch):
    monkeypatch.delenv("MCDM_PRETRAINED_DIR", raising=False)
    with pytest.raises(CheckpointError) as raised:
        resolve("nope-32")
    checkout = pretrained.REPO_PRETRAINED / "nope-32"
    assert str(raised.value) == ("no model folder 'nope-32'; looked in: nope-32, $MCDM_PRETRAINED_DIR (not set), "
                                 f"installed model packages (none), {checkout} (this checkout)")


def test_a_path_is_taken_as_given(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(CheckpointError, match=rf"^no model folder '{missing}'; looked in: {missing}$"):
        resolve(missing)
