"""The architecture's boundaries, read from the source: the engine imports no plugin, no plugin imports another,
and each distribution declares what its code imports, and nothing it does not.

A plugin reaches another modality only through the registry (``mcdm.plugins``); the scan reads every module's
``import``/``from`` statements and ``importlib.import_module("...")`` calls with a literal name.
"""

import ast
import importlib.metadata
import re
import sys
import tomllib
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


def distribution(name: str) -> str:
    """A requirement's or distribution's name, normalised (PEP 503): ``PyYAML>=6`` -> ``pyyaml``."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", name).group()).lower()


def declared(pyproject: Path) -> tuple[set[str], set[str]]:
    """A pyproject's runtime dependencies and the dependencies of its extras, as distribution names."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = {distribution(r) for group in project.get("optional-dependencies", {}).values() for r in group}
    return {distribution(r) for r in project.get("dependencies", [])}, extras


def third_party_imports(folder: Path) -> dict[str, list[str]]:
    """The installed distributions that the modules under ``folder`` import -> where (mcdm's own left out)."""
    provides = PROVIDES
    found: dict[str, list[str]] = {}
    for package, places in imported_packages(folder).items():
        if package in sys.stdlib_module_names or package == ENGINE or package in PACKAGES:
            continue
        for name in provides.get(package, [package]):
            found.setdefault(distribution(name), []).extend(places)
    return found


PROVIDES = importlib.metadata.packages_distributions()  # import name -> the installed distributions giving it
ENGINE_RUNTIME, ENGINE_EXTRAS = declared(ROOT / "pyproject.toml")


def test_the_engine_declares_exactly_what_it_imports():
    """A dependency only tests (or only a plugin) import belongs in an extra (or that plugin), not in mcdm's own."""
    imported = third_party_imports(ROOT / ENGINE)
    assert sorted(ENGINE_RUNTIME - set(imported)) == []
    assert {name: places for name, places in imported.items() if name not in ENGINE_RUNTIME | ENGINE_EXTRAS} == {}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_plugin_declares_what_it_imports_beyond_the_engine(package):
    runtime, extras = declared(PACKAGES[package].parent / "pyproject.toml")
    known = runtime | extras | (ENGINE_RUNTIME if "mcdm" in runtime else set())
    imported = third_party_imports(PACKAGES[package])
    assert {name: places for name, places in imported.items() if name not in known} == {}


def test_the_scan_sees_every_kind_of_import(tmp_path):
    (tmp_path / "m.py").write_text("import a.b\nfrom c.d import e\nfrom . import f\n"
                                   "import importlib\nimportlib.import_module('g.h')\n")
    assert set(imported_packages(tmp_path)) == {"a", "c", "importlib", "g"}
