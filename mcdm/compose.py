"""Composer: the public entry point. Loads a prior and modality models, then generates from partial inputs.

    composer = Composer.from_pretrained("synthfaces-32")
    images = composer.generate({"sketch": "sketch.png", "text": "She has blond hair."}, num_images=4, seed=0)

Modalities left out of ``conditions`` are left out of the composition: partial inputs are the normal case.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import torch

from mcdm.checkpoint import CHECKSUMS, LoadedModel, load_model, verify_checksums
from mcdm.combine import TimeWindow
from mcdm.config import CompositionConfig, ModalityConfig, load_config
from mcdm.errors import ConditionError, ConfigError, MCDMError, UnknownNameError
from mcdm.methods import MethodConfig, TermFacts, Trace, check_method
from mcdm.plugins import PluginSet, make_plugin_manager
from mcdm.pretrained import COMPOSITION_FILE, resolve
from mcdm.predictor import PRIOR, ComposedEps, EpsModel, Term
from mcdm.sampling import StepCallback, sample
from mcdm.schedule import check_compatible, make_scheduler

Precision = Literal["fp32", "bf16", "fp16"]
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


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
        self.modalities = {name: self.plugins.modality(name) for name in models}
        self.settings = {name: (settings or {}).get(name, ModalityConfig(path="")) for name in models}
        self.scheduler_name = scheduler
        self.default_steps = steps
        self.corrector = {"corrector_steps": corrector_steps, "corrector_size": corrector_size}
        self.prior_mixture = self._check_mixture(dict(prior_mixture or {}))
        self.method = method
        self.sample_size = prior.denoiser.sample_size
        self.channels = prior.denoiser.image_channels
        self.schedule_config = prior.schedule_config

    @classmethod
    def from_config(
        cls, config: CompositionConfig, *, root: str | Path = ".", plugins: PluginSet | None = None, **kwargs: Any
    ) -> "Composer":
        """Load every model a composition config names (paths relative to ``root``)."""
        plugins = plugins or make_plugin_manager()
        root = Path(root)
        prior = load_model(root / config.prior, plugins, name=f"{config.name}/prior")
        models = {
            name: load_model(root / m.path, plugins, name=f"{config.name}/{name}") for name, m in config.modalities.items()
        }
        kwargs = {"corrector_steps": config.corrector_steps, "corrector_size": config.corrector_size,
                  "prior_mixture": dict(config.prior_mixture), "method": config.method, **kwargs}
        return cls(prior, models, settings=config.modalities, scheduler=config.scheduler, steps=config.steps,
                   plugins=plugins, **kwargs)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, overrides: Sequence[str] = (), **kwargs: Any) -> "Composer":
        """A composition folder (``composition.yaml`` + model folders), found by name or path; checksums verified."""
        folder = resolve(name_or_path)
        if (folder / CHECKSUMS).is_file():
            verify_checksums(folder)
        config = load_config(CompositionConfig, folder / COMPOSITION_FILE, overrides)
        return cls.from_config(config, root=folder, **kwargs)

    def prepare(self, conditions: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Validate and encode raw inputs; an unknown or unloaded modality name is an error."""
        unknown = [name for name in conditions if name not in self.models]
        if unknown:
            raise UnknownNameError(
                f"no model for modality {unknown[0]!r} in this composition; it has: {', '.join(self.models) or 'none'}"
            )
        prepared = {}
        for name, raw in conditions.items():
            try:
                cond = self.modalities[name].prepare(raw, size=self.sample_size)
            except MCDMError:
                raise
            except Exception as exc:  # a plugin that did not validate its input: still name the input
                raise ConditionError(f"{name}: cannot use {_short(raw)} ({type(exc).__name__}: {exc})") from exc
            if cond.is_floating_point() and not torch.isfinite(cond).all():
                raise ConditionError(f"condition {name!r} contains NaN or infinite values")
            prepared[name] = cond
        return prepared

    def generate_tensor(
        self,
        conditions: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        num_images: int | None = None,
        steps: int | None = None,
        seed: int = 0,
        scheduler: str | None = None,
        weights: Mapping[str, float] | None = None,
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
        ``corrector_steps`` / ``corrector_size``: Langevin steps after each sampler step [composition default].
        ``method``: particles, balanced AND, OR, MALA (:class:`mcdm.methods.MethodConfig`) [composition default];
        ``trace`` (a :class:`mcdm.methods.Trace`) records the particles' ESS and MALA's acceptance.
        """
        method = self.method if method is None else method
        corrector_steps = self.corrector["corrector_steps"] if corrector_steps is None else corrector_steps
        predictor = self.predictor(conditions, num_images=num_images, weights=weights, particles=method.particles)
        check_method(method, [_facts(term) for term in predictor.terms], corrector_steps=corrector_steps,
                     prior_mixture=bool(self.prior_mixture))
        size = predictor.batch_size // method.particles
        sched = make_scheduler(scheduler or self.scheduler_name, self.schedule_config)
        generator = torch.Generator("cpu").manual_seed(seed)
        with self._autocast():
            x = sample(
                predictor, sched, shape=(size, self.channels, self.sample_size, self.sample_size),
                steps=steps or self.default_steps, generator=generator, device=self.device,
                progress=progress, callback=callback, corrector_steps=corrector_steps,
                corrector_size=self.corrector["corrector_size"] if corrector_size is None else corrector_size,
                method=method, trace=trace,
            )
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
        particles: int = 1,
    ) -> ComposedEps:
        """The composed eps-predictor ``(x_t, t) -> eps*`` for a request: what ``generate_tensor`` samples from.

        With ``particles`` K, each image's conditions are repeated for its K particles (batch B * K).
        """
        batch, shared = self._prepare_batch(conditions, num_images)
        if particles > 1:
            batch = {name: cond.repeat_interleave(particles, dim=0) for name, cond in batch.items()}
        for name in weights or {}:
            if name not in batch:
                raise UnknownNameError(f"weight given for {name!r}, which has no condition in this request")
        terms = [self._term(name, cond, shared, (weights or {}).get(name)) for name, cond in batch.items()]
        size = next(iter(batch.values())).shape[0] if batch else (num_images or 1) * particles
        return ComposedEps(self.prior, terms, batch_size=size, prior_mixture=self.prior_mixture)

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
        if num_images is not None and num_images < 1:
            raise ConfigError(f"num_images must be at least 1, got {num_images}")
        if isinstance(conditions, Mapping):
            count = num_images or 1
            prepared = self.prepare(conditions)
            return {n: c.unsqueeze(0).expand(count, *c.shape) for n, c in prepared.items()}, True
        per_image = list(conditions)
        if not per_image:
            raise ConfigError("an empty list of conditions: give one mapping per image")
        if num_images is not None and num_images != len(per_image):
            raise ConfigError(f"num_images={num_images} but {len(per_image)} per-image conditions")
        names = set(per_image[0])
        for i, request in enumerate(per_image):
            if set(request) != names:
                raise ConfigError(f"image {i} names modalities {sorted(request)}, image 0 names {sorted(names)}: "
                                  "every image of a batch must use the same modalities")
        prepared = [self.prepare(request) for request in per_image]
        return {n: torch.stack([p[n] for p in prepared]) for n in per_image[0]}, False

    def _term(self, name: str, batch: torch.Tensor, shared: bool, weight: float | None) -> Term:
        setting = self.settings[name]
        modality = self.modalities[name]
        batch = batch.to(self.device)
        scale: float | torch.Tensor = setting.weight if weight is None else float(weight)
        conds = batch[:1] if shared else batch  # a shared condition's map is computed once and broadcast
        maps = [modality.weight_map(c) for c in conds] if setting.weight_map else [None]
        if maps[0] is not None:  # (B or 1, 1, H, W): broadcast over channels
            scale = scale * torch.stack(maps).to(self.device, torch.float32)[:, None]
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

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])


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

    arrays = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays]
