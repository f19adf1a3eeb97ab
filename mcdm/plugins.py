"""The plugin manager: built-in plugins, entry-point plugins, and the registry of what they provide.

A fresh manager comes from :func:`make_plugin_manager` (no module-global state), so tests and
programs can build as many as they like. Entry-point plugins load one by one: a broken one is
reported by name and skipped, or raised when ``strict`` (``MCDM_STRICT_PLUGINS=1``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from mcdm import hookspecs
from mcdm.distributions import install_hint
from mcdm.errors import PluginError, UnknownNameError

ENTRY_POINT_GROUP = "mcdm"
DEFAULT_PLUGINS = ("mcdm.denoisers", "mcdm.training.builtin")
# mcdm's own modality plugins, loaded before any other: their names are never taken over
BUILTIN_DISTRIBUTIONS = ("mcdm-sketch", "mcdm-segmentation", "mcdm-text", "mcdm-joint", "mcdm-diffusers")


@dataclass(frozen=True)
class Registration:
    name: str
    load: Callable[[], Any]
    summary: str
    plugin: str


@dataclass
class PluginSet:
    """What the registered plugins provide, plus the entry-point plugins that failed to load."""

    manager: pluggy.PluginManager
    modalities: dict[str, Registration] = field(default_factory=dict)
    denoisers: dict[str, Registration] = field(default_factory=dict)
    trainers: dict[str, Registration] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)
    _loaded: dict[tuple[str, str], Any] = field(default_factory=dict)

    def modality(self, name: str):
        """The Modality instance registered as ``name`` (loaded on first use)."""
        return self._load("modality", self.modalities, name)

    def denoiser_class(self, name: str):
        """The Denoiser class registered as ``name`` (loaded on first use)."""
        return self._load("denoiser type", self.denoisers, name)

    def trainer(self, name: str):
        """The Trainer registered as ``name`` (``mcdm train NAME``; loaded on first use)."""
        return self._load("trainer", self.trainers, name)

    def _load(self, kind: str, table: dict[str, Registration], name: str):
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise UnknownNameError(f"unknown {kind} {name!r}; installed: {known}{install_hint(kind, name)}")
        key = (kind, name)
        if key not in self._loaded:
            registration = table[name]
            try:
                value = registration.load()
            except (Exception, SystemExit) as exc:  # third-party code: report it under the plugin's name
                raise PluginError(f"plugin {registration.plugin!r} failed to load its {kind} {name!r}: "
                                  f"{type(exc).__name__}: {exc}") from exc
            _check_provided(kind, registration, value)
            self._loaded[key] = value
        return self._loaded[key]

    def describe(self) -> dict:
        """A JSON-ready summary for ``mcdm plugins``."""
        return {
            "plugins": sorted(self.manager.get_name(p) or repr(p) for p in self.manager.get_plugins()),
            "modalities": {n: {"plugin": r.plugin, "summary": r.summary} for n, r in sorted(self.modalities.items())},
            "denoisers": {n: {"plugin": r.plugin, "summary": r.summary} for n, r in sorted(self.denoisers.items())},
            "trainers": {n: {"plugin": r.plugin, "summary": r.summary} for n, r in sorted(self.trainers.items())},
            "broken": dict(sorted(self.broken.items())),
        }


def strict_from_env() -> bool:
    return os.environ.get("MCDM_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes"}


def make_plugin_manager(*, strict: bool | None = None, entry_points: bool = True) -> PluginSet:
    """Build a plugin manager with the built-ins and (optionally) every installed entry-point plugin.

    ``MCDM_LOAD_PLUGINS=a,b`` restricts entry-point plugins to those names (empty string: none).
    """
    strict = strict_from_env() if strict is None else strict
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    manager.check_pending()

    broken: dict[str, str] = {}
    if entry_points:
        for ep in _selected_entry_points():
            try:
                _register_entry_point(manager, ep)
            except (Exception, SystemExit) as exc:  # any failure inside third-party code is that plugin's fault
                message = f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
                if strict:
                    raise PluginError(message) from exc
                warnings.warn(message + " (skipped; set MCDM_STRICT_PLUGINS=1 to make this an error)", stacklevel=2)
                broken[ep.name] = message
    plugins = PluginSet(manager=manager, broken=broken)
    _collect(plugins, strict)
    return plugins


def _selected_entry_points() -> list[importlib.metadata.EntryPoint]:
    """Entry points in load order: mcdm's own plugin distributions first, then the rest by name.

    A name registered twice stays with the plugin that registered it first, so a third-party plugin can
    never take over a built-in modality, whatever order the installed distributions are found in.
    """
    found = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=_load_order)
    wanted = os.environ.get("MCDM_LOAD_PLUGINS")
    if wanted is None:
        return found
    names = {n.strip() for n in wanted.split(",") if n.strip()}
    return [ep for ep in found if ep.name in names]


def _load_order(ep: importlib.metadata.EntryPoint) -> tuple[int, str, str]:
    dist = getattr(ep, "dist", None)
    builtin = dist is not None and dist.metadata["Name"] in BUILTIN_DISTRIBUTIONS
    return (0 if builtin else 1, ep.name, ep.value)


def _check_provided(kind: str, registration: Registration, value: Any) -> None:
    """A registration's loader must give what its kind promises (a Modality instance, a Denoiser class, a Trainer)."""
    from mcdm.modality import Denoiser, Modality
    from mcdm.training.trainer import Trainer

    if kind == "modality":
        ok, wanted = isinstance(value, Modality), "a Modality instance"
    elif kind == "trainer":
        ok, wanted = isinstance(value, Trainer), "an mcdm.training.trainer.Trainer"
    else:
        ok, wanted = isinstance(value, type) and issubclass(value, Denoiser), "a Denoiser subclass"
    if not ok:
        raise PluginError(f"plugin {registration.plugin!r} registered {kind} {registration.name!r} as "
                          f"{_short(value)}, not {wanted}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _register_entry_point(manager: pluggy.PluginManager, ep: importlib.metadata.EntryPoint) -> None:
    module = ep.load()
    manager.register(module, name=ep.name)
    try:
        manager.check_pending()  # a misspelt hook name fails here, naming the plugin
    except pluggy.PluginValidationError:
        manager.unregister(module)
        raise


def _collect(plugins: PluginSet, strict: bool) -> None:
    """Call every registration hook, plugin by plugin; a plugin whose hook fails is skipped as a whole."""
    for hook_name, table, kind in (
        ("register_modalities", plugins.modalities, "modality"),
        ("register_denoisers", plugins.denoisers, "denoiser type"),
        ("register_trainers", plugins.trainers, "trainer"),
    ):
        for impl in getattr(plugins.manager.hook, hook_name).get_hookimpls():
            if impl.plugin_name in plugins.broken:
                continue
            try:
                table.update(_registrations(impl, table, kind))
            except PluginError as exc:
                if strict:
                    raise
                warnings.warn(f"{exc} (skipped)", stacklevel=3)
                plugins.broken[impl.plugin_name] = str(exc)


def _registrations(impl: pluggy.HookImpl, existing: dict[str, Registration], kind: str) -> dict[str, Registration]:
    plugin = impl.plugin_name
    found: dict[str, Registration] = {}

    def register(name: str, load: Callable[[], Any], summary: str = "") -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginError(f"plugin {plugin!r} registered an invalid {kind} name {name!r}")
        if name in existing or name in found:
            owner = existing[name].plugin if name in existing else plugin
            raise PluginError(f"{kind} {name!r} is registered twice: by {owner!r} (kept) and by {plugin!r} (refused)")
        found[name] = Registration(name=name, load=load, summary=summary, plugin=plugin)

    try:
        impl.function(register=register)
    except PluginError:
        raise
    except (Exception, SystemExit) as exc:  # third-party code: report it under the plugin's name
        raise PluginError(f"plugin {plugin!r} failed to register: {type(exc).__name__}: {exc}") from exc
    return found
