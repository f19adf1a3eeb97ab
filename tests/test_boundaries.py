"""The architecture's boundaries, read from the source: the engine imports no plugin, no plugin imports another.

A plugin reaches another modality only through the registry (``mcdm.plugins``); the scan reads every module's
``import``/``from`` statements and ``importlib.import_module("...")`` calls with a literal name.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_FOLDERS = ("plugins", "examples/plugins", "tests/plugins")
ENGINE = "mcdm"


def plugin_packages() -> dict[str, Path]:
    """Every plugin distribution's top-level packages in the tree: name -> folder."""
    found = {}
    for folder in PLUGIN_FOLDERS:
        for distribution in sorted((ROOT / folder).glob("*/pyproject.toml")):
            for init in sorted(distribution.parent.glob("*/__init__.py")):
                if init.parent.name != "tests":
                    found[init.parent.name] = init.parent
    return found


PACKAGES = plugin_packages()


def imported_packages(folder: Path) -> dict[str, list[str]]:
    """Top-level package -> the ``file:line`` places under ``folder`` that import it."""
    places: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str)
                  and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")):
                names = [node.args[0].value]
            for name in names:
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                places.setdefault(name.split(".")[0], []).append(f"{where}:{node.lineno}")
    return places


def test_the_tree_has_the_plugins_the_scan_is_about():
    assert {"mcdm_sketch", "mcdm_segmentation", "mcdm_text", "mcdm_joint", "mcdm_diffusers", "mcdm_hair",
            "mcdm_tags", "mcdm_thumbnail", "mcdm_toy"} <= set(PACKAGES)


def test_the_engine_imports_no_plugin():
    imported = imported_packages(ROOT / ENGINE)
    assert {name: imported[name] for name in PACKAGES if name in imported} == {}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_plugin_imports_no_other_plugin(package):
    imported = imported_packages(PACKAGES[package])
    others = {name: imported[name] for name in PACKAGES if name in imported and name != package}
    assert others == {}, f"{package} imports other plugins; look their parts up in mcdm.plugins' registry"


def test_the_scan_sees_every_kind_of_import(tmp_path):
    (tmp_path / "m.py").write_text("import a.b\nfrom c.d import e\nfrom . import f\n"
                                   "import importlib\nimportlib.import_module('g.h')\n")
    assert set(imported_packages(tmp_path)) == {"a", "c", "importlib", "g"}
