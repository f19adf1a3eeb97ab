"""``mcdm eval`` as one call: options in, results out.

:func:`run_eval` loads the composition and the judges, builds the row set, adds the tuned and the joint oracle's
rows, finds the composition's caption scorer, evaluates (``mcdm.eval.evaluate``) and writes the tables and
pictures, each table again after every row so that a stopped run keeps its rows; each finished row is also kept
under ``out/rows/`` (``mcdm.eval.store``) for ``resume``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mcdm.batch import model_checksums, model_folders
from mcdm.checkpoint import folder_digest, load_model
from mcdm.compose import Composer
from mcdm.errors import ArgumentError
from mcdm.eval.evaluate import evaluate
from mcdm.eval.inputs import face_parts
from mcdm.eval.judges import Judges
from mcdm.eval.pictures import write_pictures
from mcdm.eval.rows import SDE_STEPS, Row, methods_rows, negation_rows, partial_input_rows, standard_rows
from mcdm.eval.store import RowStore
from mcdm.eval.tables import markdown_table, methods_table, write_tables
from mcdm.eval.tune import tune_weights
from mcdm.pretrained import given_by_path, open_composition, resolve
from mcdm.validate import check_scheduler_name, check_writable_folder

RowSet = Literal["standard", "partial", "negation", "methods"]
ROW_SETS: tuple[RowSet, ...] = ("standard", "partial", "negation", "methods")


@dataclass(frozen=True)
class EvalOptions:
    """What ``mcdm eval`` takes (its options, same names): the models, the rows, the faces, where to write."""

    model: str = "synthfaces-32"  # a composition name or folder
    judges: str = "judges-32"  # a judges name or folder
    n: int = 64  # held-out faces per row
    steps: int | None = None  # sampling steps [composition default]
    scheduler: str | None = None  # [composition default]
    seed: int = 0
    reference: int = 1000  # real held-out faces the Fréchet distance compares with
    diversity_samples: int = 4  # samples per face (for 8 faces) the diversity figure compares; 0 or 1: none
    rows: RowSet = "standard"
    ddpm_steps: int = SDE_STEPS  # ddpm steps of the methods rows that need the stochastic sampler
    tune: int = 0  # validation faces to tune weights on (an extra row); 0: no tuning
    oracle: Path | None = None  # a joint model folder whose rows are added as the paired-data oracle's
    out: Path = Path("mcdm-eval")
    require_checksums: bool = False  # refuse model folders without a SHA256SUMS (always so for names)
    only: tuple[str, ...] = ()  # the names of the rows to run, of the row set's; empty: every row
    resume: bool = False  # reuse the rows under out/rows/ that a run of the same models and options finished


@dataclass(frozen=True)
class Evaluation:
    """What ``run_eval`` found: the results (``mcdm.eval.evaluate.evaluate``'s) and their Markdown table."""

    results: dict
    table: str


def run_eval(options: EvalOptions, *, progress: bool = True) -> Evaluation:
    """Evaluate as ``options`` say and write results.json, results.md and the pictures under ``options.out``."""
    if options.rows not in ROW_SETS:
        raise ArgumentError(f"rows must be one of {', '.join(ROW_SETS)}, got {options.rows!r}")
    check_writable_folder(options.out, "--out")
    if options.scheduler is not None:
        check_scheduler_name(options.scheduler)
    composer = Composer.from_pretrained(options.model, require_checksums=options.require_checksums)
    judges = Judges.load(resolve(options.judges),
                         require_checksums=options.require_checksums or not given_by_path(options.judges))
    modalities = list(composer.modalities)
    parts = face_parts(composer.plugins, modalities)
    rows = {"standard": lambda: standard_rows(modalities), "partial": lambda: partial_input_rows(modalities, parts),
            "negation": lambda: negation_rows(modalities, parts),
            "methods": lambda: methods_rows(modalities, options.ddpm_steps)}[options.rows]()
    tuning = None
    if options.tune:
        weights, trials = tune_weights(composer, judges, modalities, n=options.tune, steps=options.steps,
                                       scheduler=options.scheduler, seed=options.seed, progress=progress)
        tuning = {"weights": weights, "trials": trials}
        label = ", ".join(f"{m} {w:g}" for m, w in weights.items())
        baselines = "/".join(sorted({composer.defaults.settings[m].baseline.value for m in modalities}))
        rows.append(Row(f"all, tuned weights ({label}), {baselines} baselines", tuple(modalities), weights=weights))
    others = []
    if options.oracle is not None:
        joint = load_model(options.oracle, composer.plugins, name="joint oracle")
        others.append(composer.with_models({joint.modality: joint}))
        rows += [Row(f"joint oracle{'' if variant == 'full' else f' ({variant})'}", (joint.modality,), inputs=variant)
                 for variant in dict.fromkeys(row.inputs for row in rows)]
        parts = face_parts(composer.plugins, [*modalities, joint.modality])

    rows = _selected(rows, options.only)
    store = RowStore(options.out / "rows", _fingerprint(options, composer), reuse=options.resume)

    def table(results: dict) -> str:
        return methods_table(results) if options.rows == "methods" else markdown_table(results, parts)

    results = evaluate(composer, judges, rows, n=options.n, steps=options.steps, scheduler=options.scheduler,
                       seed=options.seed, reference=options.reference, diversity_samples=options.diversity_samples,
                       clip_score=_caption_scorer(resolve(options.model), composer), others=others,
                       progress=progress, on_row=lambda so_far: write_tables(so_far, options.out, table(so_far)),
                       store=store)
    if tuning is not None:
        results["tuning"] = tuning
    write_tables(results, options.out, table(results))
    write_pictures(results, options.out)
    return Evaluation(results, table(results))


def _selected(rows: list[Row], only: tuple[str, ...]) -> list[Row]:
    """The rows named in ``only`` (all when empty), in the row set's order; an unknown name is an error."""
    names = [row.name for row in rows]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise ArgumentError(f"--only: no row named {unknown[0]!r}; the rows are: {'; '.join(names)}")
    return [row for row in rows if not only or row.name in only]


def _fingerprint(options: EvalOptions, composer) -> dict:
    """What a stored row's figures depend on besides the row itself: the composition's settings, the files of its
    models and of the judges (not where they lie), the run's options, and the device and precision it ran at (its
    samples' last bits and its seconds per image). Not mcdm's own code: after changing it, run without
    ``resume``."""
    import torch

    folder, config = open_composition(options.model)
    models = {"composition": repr(config), "models": model_checksums(folder, config),
              "beside": _folders_beside_models(Path(folder), config, Path(options.out)),
              "judges": folder_digest(resolve(options.judges))}
    if options.oracle is not None:
        models["oracle"] = folder_digest(options.oracle)
    device = composer.device
    return {**models, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
            "precision": str(composer.precision), "n": options.n, "steps": options.steps,
            "scheduler": options.scheduler, "seed": options.seed, "reference": options.reference,
            "diversity_samples": options.diversity_samples}


def _folders_beside_models(folder: Path, config, out: Path) -> dict[str, str]:
    """A digest of each folder of the composition that is not a model's: a modality may read files there (the
    text plugin's clip/, for the CLIP score). Its top-level files (the model card, SHA256SUMS) are not read by
    the evaluation and are left out, as is a folder holding the run's own output."""
    models = {path.resolve() for path in model_folders(folder, config).values()}
    out = out.resolve()
    return {child.name: folder_digest(child) for child in sorted(folder.iterdir())
            if child.is_dir() and child.resolve() not in models and not out.is_relative_to(child.resolve())}


def _caption_scorer(composition: Path, composer):
    """The first caption scorer a modality of the composition makes from the files it ships (the text plugin:
    its CLIP in ``clip/``), or None: the evaluation then has no CLIP-score column."""
    scorers = (modality.caption_scorer(composition) for modality in composer.modalities.values())
    return next((scorer for scorer in scorers if scorer is not None), None)
