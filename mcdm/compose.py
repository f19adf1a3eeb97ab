"""Composer: the public entry point. Loads a prior and modality models, then generates from partial inputs.

    composer = Composer.from_pretrained("synthfaces-32")
    images = composer.generate({"sketch": "sketch.png", "text": "She has blond hair."}, num_images=4, seed=0)

Modalities left out of ``conditions`` are left out of the composition: partial inputs are the normal case.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping, Sequence
import warnings

import torch

from mcdm.checkpoint import LoadedModel, load_model
from mcdm.combine import Baseline, TimeWindow
from mcdm.config import CompositionConfig, ModalityConfig
from mcdm.errors import (ArgumentError, CheckpointError, ConditionError, ConfigError, MCDMError, NegationWarning,
                         ResourceError, UnknownNameError)
from mcdm.fused import Fuse, fuse_enabled, fusion_groups
from mcdm.grouped import GroupedEps, shares_networks
from mcdm.latent import LatentSpace, latent_space, load_vae, pool_weights
from mcdm.methods import MethodConfig, TermFacts, Trace, check_method
from mcdm.pixels import to_uint8
from mcdm.plugins import PluginSet, make_plugin_manager
from mcdm.pretrained import open_composition
from mcdm.predictor import PRIOR, ComposedEps, EpsModel, Term
from mcdm.sampling import StepCallback, sample
from mcdm.schedule import check_compatible, make_scheduler
from mcdm.seeds import check_seed
from mcdm.validate import (check_count, check_modality_names, check_name, check_num_images, check_steps, check_weight,
                           check_weight_names, max_images)

Precision = Literal["fp32", "bf16", "fp16"]
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
REQUEST_SETTINGS = ("weight", "start", "end", "baseline", "weight_map")
"""The ModalityConfig fields a request may overlay (``settings=``); ``path`` belongs to the composition."""


@dataclass(frozen=True)
class Defaults:
    """What a request to a Composer gets for what it leaves out: the composition's sampler settings, method and
    each modality's settings (``settings`` is read-only; a request changes them with ``settings=``)."""

    scheduler: str
    steps: int
    corrector_steps: int
    corrector_size: float
    method: MethodConfig
    settings: Mapping[str, ModalityConfig]


class Composer:
    def __init__(
        self,
        prior: LoadedModel,
        models: Mapping[str, LoadedModel],
        *,
        settings: Mapping[str, ModalityConfig] | None = None,
        scheduler: str = "dpm++",
        steps: int = 25,
        corrector_steps: int = 0,
        corrector_size: float = 0.1,
        prior_mixture: Mapping[str, float] | None = None,
        method: MethodConfig = MethodConfig(),
        plugins: PluginSet | None = None,
        device: torch.device | str = "cpu",
        precision: Precision = "fp32",
        compile: bool = False,
        vae: LatentSpace | None = None,
        fuse: Fuse = "auto",
    ):
        self.plugins = plugins or make_plugin_manager()
        self.device = torch.device(device)
        if precision not in ("fp32", *_DTYPES):
            raise ConfigError(f"unknown precision {precision!r}; choose fp32, bf16 or fp16")
        self.precision = precision
        if prior.modality is not None:
            raise ConfigError(f"the prior {prior.name!r} is a conditional model (modality {prior.modality!r})")
        for name, model in models.items():
            if model.modality != name:
                raise ConfigError(f"model {model.name!r} was trained for modality {model.modality!r}, not {name!r}")
        check_compatible([m.signature() for m in (prior, *models.values())])
        make_scheduler(scheduler, prior.schedule_config)  # fail now on an unknown scheduler name
        for model in (prior, *models.values()):
            model.denoiser.to(self.device)
            if compile:  # worth it on a GPU; on a CPU the compile time rarely pays back
                model.denoiser = torch.compile(model.denoiser)
        self.prior = EpsModel(prior, self.device)
        self.models = {name: EpsModel(m, self.device) for name, m in models.items()}
        self.fused = self._fusion_groups(fuse, compile)
        self.modalities = {name: self.plugins.modality(name) for name in models}
        self.defaults = Defaults(scheduler, steps, corrector_steps, corrector_size, method, MappingProxyType(
            {name: (settings or {}).get(name, ModalityConfig(path="")) for name in models}))
        self.prior_mixture = self._check_mixture(dict(prior_mixture or {}))
        self.sample_size = prior.denoiser.sample_size
        self.channels = prior.denoiser.image_channels
        self.schedule_config = prior.schedule_config
        # latent models: sample in the VAE's space, decode once at the end in the prior's dtype
        self.latent = latent_space(prior, vae, _weights_dtype(prior.denoiser))
        if self.latent is not None:
            self.latent.vae.to(self.device)
        self.image_size = self.sample_size * (self.latent.scale if self.latent is not None else 1)

    def with_fusion(self, fuse: Fuse) -> "Composer":
        """A composer on the same loaded models and settings whose fused calls follow ``fuse`` (benchmarks)."""
        variant = copy.copy(self)
        variant.fused = self._fusion_groups(fuse)
        return variant

    def with_models(self, models: Mapping[str, LoadedModel]) -> "Composer":
        """A composer of this one's (already loaded) prior and sampler defaults over other modality models, each
        with the default settings (e.g. the joint oracle beside a composition, ``mcdm eval --oracle``)."""
        d = self.defaults
        return Composer(self.prior.model, models, scheduler=d.scheduler, steps=d.steps,
                        corrector_steps=d.corrector_steps, corrector_size=d.corrector_size, method=d.method,
                        plugins=self.plugins, device=self.device, precision=self.precision, vae=self.latent)

    def _fusion_groups(self, fuse: Fuse, compile: bool = False) -> dict:
        """Models of one architecture as one vmapped call per step (mcdm.fused); "auto": not on the CPU."""
        denoisers = [m.denoiser for m in (self.prior, *self.models.values())]
        return fusion_groups(denoisers, compile) if fuse_enabled(fuse, self.device) else {}

    @classmethod
    def from_config(
        cls, config: CompositionConfig, *, root: str | Path = ".", plugins: PluginSet | None = None,
        conditions: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> "Composer":
        """Load every model a composition config names (paths relative to ``root``).

        ``conditions`` (raw inputs of a request to come) are validated once the prior has loaded, before the
        modality models, so a bad input costs one model's load time, not all of them.
        """
        plugins = plugins or make_plugin_manager()
        root = Path(root)
        prior = _load_named(root / config.prior, plugins, config.name, "prior")
        if conditions is not None:  # a bad input is refused before the modality models load
            check_modality_names(conditions, list(config.modalities))
            for name, raw in conditions.items():
                prepare_condition(plugins.modality(name), name, raw, prior.denoiser.sample_size)
        models = {name: _load_named(root / m.path, plugins, config.name, name) for name, m in config.modalities.items()}
        kwargs = {"corrector_steps": config.corrector_steps, "corrector_size": config.corrector_size,
                  "prior_mixture": dict(config.prior_mixture), "fuse": config.fuse, "method": config.method,
                  **kwargs}
        if config.vae:
            kwargs.setdefault("vae", load_vae(root / config.vae, _weights_dtype(prior.denoiser)))
        return cls(prior, models, settings=config.modalities, scheduler=config.scheduler, steps=config.steps,
                   plugins=plugins, **kwargs)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, overrides: Sequence[str] = (), *,
                        require_checksums: bool = False, **kwargs: Any) -> "Composer":
        """A composition folder (``composition.yaml`` + model folders), found by name or path; checksums verified
        as :func:`mcdm.pretrained.open_composition` says."""
        folder, config = open_composition(name_or_path, overrides, require_checksums=require_checksums)
        return cls.from_config(config, root=folder, **kwargs)

    def prepare(self, conditions: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Validate and encode raw inputs; an unknown or unloaded modality name is an error."""
        check_modality_names(conditions, list(self.models))
        return {name: prepare_condition(self.modalities[name], name, raw, self._condition_size(name))
                for name, raw in conditions.items()}

    def _condition_size(self, name: str) -> int:
        """The resolution modality ``name``'s denoiser reads its condition at: the sample's or the image's."""
        return self.image_size if self.models[name].denoiser.condition_size == "image" else self.sample_size

    def generate_tensor(
        self,
        conditions: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        num_images: int | None = None,
        steps: int | None = None,
        seed: int = 0,
        scheduler: str | None = None,
        weights: Mapping[str, float] | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        progress: bool = True,
        callback: StepCallback | None = None,
        corrector_steps: int | None = None,
        corrector_size: float | None = None,
        method: MethodConfig | None = None,
        trace: Trace | None = None,
    ) -> torch.Tensor:
        """Images as a (num_images, C, H, W) float tensor in [-1, 1], on the CPU.

        ``conditions`` is one mapping for all images (``num_images`` of them, default 1), or a sequence of
        mappings, one per image, all naming the same modalities: every image is sampled in the same batch.
        ``settings`` overlays per-modality settings (``REQUEST_SETTINGS``) on the composition's for this call,
        e.g. ``{"text": {"weight": -1, "start": 0.2, "baseline": "own"}}``.
        ``corrector_steps`` / ``corrector_size``: Langevin steps after each sampler step [composition default].
        ``method``: particles, balanced AND, OR, MALA (:class:`mcdm.methods.MethodConfig`) [composition default];
        ``trace`` (a :class:`mcdm.methods.Trace`) records the particles' ESS, MALA's acceptance and the network
        evaluations.
        """
        d = self.defaults
        method = d.method if method is None else method
        corrector_steps = d.corrector_steps if corrector_steps is None else corrector_steps
        scheduler = d.scheduler if scheduler is None else check_name(scheduler, "scheduler")
        sched = make_scheduler(scheduler, self.schedule_config)
        steps = check_steps(d.steps if steps is None else steps, int(self.schedule_config["num_train_timesteps"]),
                            scheduler)
        generator = torch.Generator("cpu").manual_seed(check_seed(seed))
        self._check_batch_fits(conditions, num_images, settings, method.particles)
        predictor = self.predictor(conditions, num_images=num_images, weights=weights, settings=settings,
                                   particles=method.particles)
        check_method(method, [_facts(term) for term in predictor.terms], corrector_steps=corrector_steps,
                     prior_mixture=bool(self.prior_mixture))
        size = predictor.batch_size // method.particles
        try:
            with self._autocast(), self._counting(trace):
                x = sample(
                    predictor, sched, shape=(size, self.channels, self.sample_size, self.sample_size),
                    steps=steps, generator=generator, device=self.device,
                    progress=progress, callback=callback, corrector_steps=corrector_steps,
                    corrector_size=d.corrector_size if corrector_size is None else corrector_size,
                    method=method, trace=trace,
                )
                if self.latent is not None:
                    x = self.latent.decode(x)
        except (torch.OutOfMemoryError, MemoryError) as exc:
            raise ResourceError(f"out of memory sampling {size} image(s) on {self.device}: ask for fewer images "
                                "at once (num_images), or use a device with more memory") from exc
        except RuntimeError as exc:
            if not _is_device_failure(exc):
                raise
            first = str(exc).strip().splitlines()[0]
            raise ResourceError(f"the {self.device} device failed while sampling ({first}); try fewer images or "
                                "another device") from exc
        return x.float().clamp(-1, 1).cpu()

    def generate(self, conditions: Mapping[str, Any] | Sequence[Mapping[str, Any]], **kwargs: Any) -> list:
        """Images as PIL images; arguments as :meth:`generate_tensor`."""
        return to_pil(self.generate_tensor(conditions, **kwargs))

    def predictor(
        self,
        conditions: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        num_images: int | None = None,
        weights: Mapping[str, float] | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        particles: int = 1,
    ) -> ComposedEps:
        """The composed eps-predictor ``(x_t, t) -> eps*`` for a request: what ``generate_tensor`` samples from.

        With ``particles`` K, each image's conditions are repeated for its K particles (batch B * K).
        """
        batch, shared = self._prepare_batch(conditions, num_images)
        if particles > 1:
            batch = {name: cond.repeat_interleave(particles, dim=0) for name, cond in batch.items()}
        check_weight_names(weights or {}, batch)
        weights = {name: check_weight(name, w) for name, w in (weights or {}).items()}
        twice = [name for name in weights if "weight" in (settings or {}).get(name, {})]
        if twice:
            raise ConfigError(f"weight of {twice[0]!r} given twice: in weights and in settings")
        request = self.request_settings(settings, given=batch)
        terms = [self._term(name, cond, shared, weights.get(name), request[name])
                 for name, cond in batch.items()]
        size = next(iter(batch.values())).shape[0] if batch else (num_images or 1) * particles
        # denoisers sharing one network (e.g. a UNet read by several ControlNets) run as one batched call
        if self.fused or shares_networks([self.prior, *self.models.values()]):
            return GroupedEps(self.prior, terms, batch_size=size, prior_mixture=self.prior_mixture, fused=self.fused)
        return ComposedEps(self.prior, terms, batch_size=size, prior_mixture=self.prior_mixture)

    def request_settings(self, overlay: Mapping[str, Mapping[str, Any]] | None,
                         given: Mapping[str, Any] | None = None) -> dict[str, ModalityConfig]:
        """The composition's modality settings with a request's overlay merged on top, validated.

        Returns new ModalityConfig values (``dataclasses.replace``): the Composer itself never changes.
        ``given``: the request's conditions; settings for a modality without one are an error, as for weights.
        """
        defaults = self.defaults.settings
        merged = dict(defaults)
        for name, changes in (overlay or {}).items():
            if name not in defaults:
                raise UnknownNameError(f"settings given for {name!r}, which is not in this composition; "
                                       f"it has: {', '.join(defaults) or 'none'}")
            if given is not None and name not in given:
                raise UnknownNameError(f"settings given for {name!r}, which has no condition in this request")
            unknown = sorted(set(changes) - set(REQUEST_SETTINGS))
            if unknown:
                raise ConfigError(f"settings for {name!r}: unknown key {unknown[0]!r}; a request may set "
                                  f"{', '.join(REQUEST_SETTINGS)}")
            try:
                merged[name] = _checked_setting(name, dataclasses.replace(defaults[name], **changes))
            except ArgumentError as exc:  # ModalityConfig's own check of the weight and the window
                raise ArgumentError(f"settings for {name!r}: {exc}") from None
        return merged

    def _check_batch_fits(self, conditions, num_images: int | None, overlay: Mapping[str, Mapping[str, Any]] | None,
                          particles: int = 1) -> None:
        """Refuse, before any tensor is built, a batch that cannot fit in memory (each image's ``particles``; a
        modality on its own baseline, in the composition or in the request's ``overlay``, costs a call more)."""
        if isinstance(conditions, Mapping):
            size, names = (1 if num_images is None else check_count(num_images, "num_images")), list(conditions)
        else:
            _check_per_image(conditions)
            size, names = len(conditions), list(conditions[0])
        merged = self.request_settings(overlay)
        own = sum(1 for name in names if name in merged and merged[name].baseline is Baseline.OWN)
        check_num_images(size, max(1, max_images(self.sample_size, self.channels, 1 + len(names) + own) // particles))

    def _check_mixture(self, mixture: dict[str, float]) -> dict[str, float]:
        unknown = [name for name in mixture if name != PRIOR and name not in self.models]
        if unknown:
            raise ConfigError(f"prior_mixture names {unknown}; it takes {PRIOR!r} and this composition's modalities: "
                              f"{', '.join(self.models) or 'none'}")
        if mixture and not (all(w >= 0 for w in mixture.values()) and abs(sum(mixture.values()) - 1.0) <= 1e-6):
            raise ConfigError(f"prior_mixture weights must be >= 0 and sum to 1, got {mixture}")
        return mixture

    def _prepare_batch(self, conditions, num_images: int | None) -> tuple[dict[str, torch.Tensor], bool]:
        """Condition batches (B, ...) per modality, and whether every image shares one condition."""
        if num_images is not None:
            check_count(num_images, "num_images")
        if isinstance(conditions, Mapping):
            count = num_images or 1
            prepared = self.prepare(conditions)
            return {n: c.unsqueeze(0).expand(count, *c.shape) for n, c in prepared.items()}, True
        per_image = _check_per_image(conditions)
        if num_images is not None and num_images != len(per_image):
            raise ConfigError(f"num_images={num_images} but {len(per_image)} per-image conditions")
        names = set(per_image[0])
        for i, request in enumerate(per_image):
            if set(request) != names:
                raise ConfigError(f"image {i} names modalities {sorted(request)}, image 0 names {sorted(names)}: "
                                  "every image of a batch must use the same modalities")
        prepared = [self.prepare(request) for request in per_image]
        return {n: torch.stack([p[n] for p in prepared]) for n in per_image[0]}, False

    def _term(self, name: str, batch: torch.Tensor, shared: bool, weight: float | None,
              setting: ModalityConfig) -> Term:
        modality = self.modalities[name]
        batch = batch.to(self.device)
        scale: float | torch.Tensor = setting.weight if weight is None else float(weight)
        if scale < 0 and setting.baseline == Baseline.SHARED:
            warnings.warn(NegationWarning(
                f"{name!r} at weight {scale:g} against the shared prior also subtracts its model's gap from the prior "
                "(eps_i(null) - eps_u), which can break the images (docs/method.md, NOT); its own baseline negates "
                f"the condition alone: baseline: own (--set modalities.{name}.baseline=own)"), stacklevel=4)
        conds = batch[:1] if shared else batch  # a shared condition's map is computed once and broadcast
        maps = [modality.weight_map(c) for c in conds] if setting.weight_map else [None]
        if maps[0] is not None:  # (B or 1, 1, H, W): broadcast over channels, area-pooled to latent size
            scale = scale * pool_weights(torch.stack(maps).to(self.device, torch.float32)[:, None], self.sample_size)
        null = torch.stack([modality.null_condition(c) for c in conds]).expand_as(batch)
        return Term(
            name=name,
            model=self.models[name],
            condition=batch,
            null_condition=null,
            weight=scale,
            window=TimeWindow(setting.start, setting.end),
            baseline=setting.baseline,
        )

    @contextlib.contextmanager
    def _counting(self, trace: Trace | None):
        """Count into ``trace.network_images`` the images every network evaluation of this composer's models
        takes (a batch of B counts B)."""
        if trace is None:
            yield
            return

        def count(module, args):
            trace.network_images += args[0].shape[0]

        handles = [model.denoiser.register_forward_pre_hook(count) for model in (self.prior, *self.models.values())]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])


def _check_per_image(conditions: Any) -> list:
    """Conditions given one mapping per image: a non-empty list or tuple of mappings."""
    if not isinstance(conditions, (list, tuple)) or not all(isinstance(c, Mapping) for c in conditions):
        raise ConditionError(f"conditions must be a mapping {{modality: input}} or a list of them (one per image), "
                             f"got {_short(conditions)}")
    if not conditions:
        raise ConfigError("an empty list of conditions: give one mapping per image")
    return list(conditions)


def _load_named(folder: Path, plugins: PluginSet, composition: str, role: str) -> LoadedModel:
    """A composition's model, its load errors prefixed with its role (the prior, or which modality's model)."""
    try:
        return load_model(folder, plugins, name=f"{composition}/{role}")
    except CheckpointError as exc:
        raise CheckpointError(f"{role} model: {exc}") from exc


def prepare_condition(modality, name: str, raw: Any, size: int) -> torch.Tensor:
    """One raw input through its modality's ``prepare``; whatever goes wrong is a ConditionError naming it."""
    try:
        cond = modality.prepare(raw, size=size)
    except MCDMError:
        raise
    except Exception as exc:  # a plugin that did not validate its input: still name the input
        raise ConditionError(f"{name}: cannot use {_short(raw)} ({type(exc).__name__}: {exc})") from exc
    if cond.is_floating_point() and not torch.isfinite(cond).all():
        raise ConditionError(f"condition {name!r} contains NaN or infinite values")
    return cond


def _is_device_failure(exc: RuntimeError) -> bool:
    """An allocator or accelerator failure (as opposed to a bug): torch reports these as plain RuntimeErrors."""
    text = str(exc)
    return any(marker in text for marker in ("not enough memory", "out of memory", "CUDA error", "device-side",
                                             "CUBLAS_STATUS", "cuDNN error", "MPS backend"))


def _checked_setting(name: str, setting: ModalityConfig) -> ModalityConfig:
    """A request's merged ModalityConfig with its baseline as the enum and its weight map a boolean (the weight
    and the window are checked by ModalityConfig itself)."""
    try:
        baseline = Baseline(setting.baseline)
    except ValueError:
        raise ConfigError(f"settings for {name!r}: baseline must be one of "
                          f"{', '.join(b.value for b in Baseline)}, got {setting.baseline!r}") from None
    if not isinstance(setting.weight_map, bool):
        raise ConfigError(f"settings for {name!r}: weight_map must be true or false, got {setting.weight_map!r}")
    return dataclasses.replace(setting, weight=float(setting.weight), baseline=baseline)


def _facts(term: Term) -> TermFacts:
    """What the method checks need of a term (one look at its weight map per request, not per step)."""
    weight = term.weight
    if torch.is_tensor(weight):
        low, high = float(weight.min()), float(weight.max())
        flat = weight.reshape(weight.shape[0], -1)
        varies = bool((flat != flat[:, :1]).any())
    else:
        low = high = float(weight)
        varies = False
    return TermFacts(term.name, low, high, varies, (term.window.start, term.window.end))


def _short(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def to_pil(images: torch.Tensor) -> list:
    """(B, C, H, W) in [-1, 1] -> list of PIL images (RGB for 3 channels, L for 1)."""
    from PIL import Image

    arrays = to_uint8(images)
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays]


def _weights_dtype(denoiser: torch.nn.Module) -> torch.dtype:
    """The dtype of a denoiser's weights, the VAE's for a latent prior (fp32 for one without any, e.g. analytic)."""
    return next((p.dtype for p in denoiser.parameters()), torch.float32)
