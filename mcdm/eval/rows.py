"""The rows of an evaluation table: which modalities each row gives the composition, on which inputs, and the
request (weights, a settings overlay, sampling options) it sends ``Composer.generate_tensor``.

Row sets take the composition's modality names and, where a row is about one kind of input (the caption a NOT
negates, the mask a weight map comes from, the sketch a time window silences), the face part each modality
declares (``Modality.face_part``, gathered by ``mcdm.eval.inputs.face_parts``), never a modality's name.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from mcdm.combine import Baseline
from mcdm.errors import ConfigError
from mcdm.methods import Combiner, Corrector, MethodConfig

SDE_STEPS = 50  # ddpm steps of the methods rows that need the stochastic sampler


@dataclass(frozen=True)
class Row:
    """One line of the table: the modalities given, and how.

    ``weights``: {modality: weight}; ``inputs``: the input variant (``mcdm.eval.inputs``); ``settings``: the
    request's overlay on the composition's modality settings (``generate_tensor(settings=...)``, e.g.
    ``{"text": {"baseline": "own"}}``, ``{"segmentation": {"weight_map": False}}``); ``sampling``: further
    keyword arguments of ``Composer.generate_tensor`` (e.g. ``{"corrector_steps": 1}``).
    """

    name: str
    modalities: tuple[str, ...]
    weights: Mapping[str, float] = field(default_factory=dict)
    inputs: str = "full"
    settings: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    sampling: Mapping[str, object] = field(default_factory=dict)

    @property
    def baseline_form(self) -> str:
        """"shared" or "own" when the row sets every one of its modalities' baseline to it, else ""."""
        forms = {Baseline(changes["baseline"]).value for changes in self.settings.values() if "baseline" in changes}
        every = all("baseline" in self.settings.get(m, {}) for m in self.modalities)
        return forms.pop() if len(forms) == 1 and every else ""


def standard_rows(modalities: Sequence[str]) -> list[Row]:
    """The prior alone, each modality alone, every pair, ..., all of them (MCDM: unit weights against the shared
    prior, whatever the composition's defaults), and all of them with each model's own null prediction as its
    baseline."""
    rows = [Row("prior", ())]
    for k in range(1, len(modalities) + 1):
        rows += [Row(" + ".join(combo), tuple(combo), weights=dict.fromkeys(combo, 1.0),
                     settings={m: {"baseline": Baseline.SHARED} for m in combo})
                 for combo in itertools.combinations(modalities, k)]
    if len(modalities) > 1:
        rows.append(Row("all, own baselines", tuple(modalities), weights=dict.fromkeys(modalities, 1.0),
                        settings={m: {"baseline": Baseline.OWN} for m in modalities}))
    if len(modalities) > 2:  # with the pairs above, each modality dropped from the whole in both forms
        for dropped in modalities:
            kept = tuple(m for m in modalities if m != dropped)
            rows.append(Row(f"all but {dropped}, own baselines", kept, weights=dict.fromkeys(kept, 1.0),
                            settings={m: {"baseline": Baseline.OWN} for m in kept}))
    return rows


def negation_rows(modalities: Sequence[str], parts: Mapping[str, tuple[str, ...]]) -> list[Row]:
    """The caption "The person wears eyeglasses." (``EYEGLASSES_CAPTION``) at weight +1 and -1 (NOT) in both
    forms, beside the prior, given to the composition's caption modality: the eyeglasses rate is the caption's
    ``attribute_accuracy.eyeglasses``."""
    captioned = [m for m in modalities if parts[m] == ("caption",)]
    if not captioned:
        raise ConfigError("negation rows need a modality whose input is a caption (face_part 'caption'); "
                          f"this composition has {', '.join(modalities) or 'none'}")
    text = captioned[0]
    rows = [Row("prior", (), inputs="eyeglasses")]
    for weight in (1.0, -1.0):
        for baseline in (Baseline.SHARED, Baseline.OWN):
            rows.append(Row(f"{text} at {weight:+g}, {baseline.value} baseline", (text,), weights={text: weight},
                            inputs="eyeglasses", settings={text: {"baseline": baseline}}))
    return rows


def methods_rows(modalities: Sequence[str], sde_steps: int = SDE_STEPS) -> list[Row]:
    """Each modality alone, then all of them by the naive sum and by each method beyond it (docs/method.md).

    The sum at the composition's own sampler, at ``sde_steps`` ddpm steps (diffusers' DDPM step) and on the
    stochastic step that balanced AND and particles K = 2, 4, 8 run on (they need it); MALA (one corrector step)
    at the composition's sampler.
    """
    every = tuple(modalities)
    ddpm = {"scheduler": "ddpm", "steps": sde_steps}
    rows = [Row(m, (m,)) for m in modalities]
    # the sum on the methods' own sampler (DDPM's step with the posterior variance, unclipped, mcdm.sde.Step):
    # two particles never reweighted, one kept at random, so what the methods change is read against it
    sde_sum = MethodConfig(particles=2, particles_start=0.0, particles_end=0.0)
    rows += [Row("naive sum", every), Row(f"naive sum, ddpm {sde_steps}", every, sampling=ddpm),
             Row(f"naive sum, the methods' ddpm {sde_steps}", every, sampling={**ddpm, "method": sde_sum}),
             Row(f"balanced AND, ddpm {sde_steps}", every,
                 sampling={**ddpm, "method": MethodConfig(combiner=Combiner.BALANCED)}),
             Row("MALA, 1 corrector step", every,
                 sampling={"method": MethodConfig(corrector=Corrector.MALA), "corrector_steps": 1})]
    rows += [Row(f"particles K = {k}, ddpm {sde_steps}", every,
                 sampling={**ddpm, "method": MethodConfig(particles=k)}) for k in (2, 4, 8)]
    return rows


def partial_input_rows(modalities: Sequence[str], parts: Mapping[str, tuple[str, ...]]) -> list[Row]:
    """For each partial input variant: each modality alone, all together, and all together with each option
    changed: no per-pixel weights for the masks, one Langevin corrector step, a sketch silent in the last 20%
    of steps."""
    rows = []
    everything = tuple(modalities)
    masks = [m for m in modalities if parts[m] == ("mask",)]  # their known region is their weight map
    sketches = [m for m in modalities if parts[m] == ("sketch",)]
    for variant in ("partial", "upper face"):
        rows += [Row(f"{m} ({variant})", (m,), inputs=variant) for m in modalities]
        rows.append(Row(f"all ({variant})", everything, inputs=variant))
        if masks:
            rows.append(Row(f"all ({variant}), no weight map", everything, inputs=variant,
                            settings={m: {"weight_map": False} for m in masks}))
        rows.append(Row(f"all ({variant}), 1 corrector step", everything, inputs=variant,
                        sampling={"corrector_steps": 1}))
        rows += [Row(f"all ({variant}), {m} until t = 0.2T", everything, inputs=variant,
                     settings={m: {"start": 0.2}}) for m in sketches]
    return rows
