"""Write MODEL_CARD.md of a shipped composition from its training records and an evaluation of the folder itself.

    mcdm eval --model pretrained/synthfaces-32 --n 128 --out EVAL_DIR
    python scripts/write_model_card.py --composition pretrained/synthfaces-32 --eval EVAL_DIR \\
        --eval-command "mcdm eval --model pretrained/synthfaces-32 --n 128 --out EVAL_DIR" --hardware "..."

A latent composition (synthfaces-64) adds ``--judges`` (the judges the evaluation used) and ``--compare
EVAL_DIR_32`` (the same evaluation of synthfaces-32, for the side-by-side table and the sketch target).

Every figure in the card is read from those files: the training configs, logs and summaries that
``scripts/package_pretrained.py`` copied beside each model (and, for a latent composition, the VAE run's records
in ``vae-training/``), the CLIP's trainer record, and ``results.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from safetensors import safe_open

from mcdm.checkpoint import write_checksums
from mcdm.eval.inputs import face_parts
from mcdm.eval.scoring import PART_FIGURE
from mcdm.eval.tables import markdown_table
from mcdm.plugins import make_plugin_manager
from package_pretrained import VAE_RECORDS  # beside this script: the folder it copies the VAE run's records to

TARGETS = {"mask_iou": 0.75, "edge_f1": 0.6, "attribute_accuracy": 0.85}
CEILING_SHARE = 0.9  # the segmentation target may instead be 90% of the judge's ceiling
HALF_CHECK = "float16-check.json"
WITHIN = 0.10  # composed figures must stay within 10% of the single model's own
# synthfaces-64's targets (its issue): single-model floors, the composition's share of each single model and of
# the joint oracle, the caption's hair colour in the composition, the VAE's cost to the judges
TARGETS_64 = {"mask_iou": 0.80, "attribute_accuracy": 0.85, "attribute_accuracy.smiling": 0.80,
              "attribute_accuracy.beard": 0.80}
WITHIN_64, ORACLE_SHARE, HAIR_POINTS, VAE_POINTS = 0.05, 0.95, 0.05, 0.01


def parameters(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*.safetensors"):
        with safe_open(path, "pt") as f:
            total += sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())
    return total


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def training_legs(log: Path) -> tuple[int, float, int]:
    """(last step, wall seconds summed over the run's legs, number of legs) from a training log.csv.

    Each resume restarts the clock, so a drop in ``seconds`` starts a new leg; steps redone after an
    interruption were cut from the log on resume and are not counted.
    """
    rows = list(csv.DictReader(log.open()))
    seconds, legs, previous = 0.0, 1, 0.0
    for row in rows:
        now = float(row["seconds"])
        if now < previous:
            seconds, legs = seconds + previous, legs + 1
        previous = now
    return int(rows[-1]["step"]), seconds + previous, legs


def model_section(name: str, folder: Path, hardware: str) -> str:
    config = json.loads((folder / "training-config.json").read_text())
    step, seconds, legs = training_legs(folder / "training-log.csv")
    manifest = json.loads((folder / "mcdm.json").read_text())
    schedule = config["schedule"]
    lines = [
        f"### {name}",
        f"- Denoiser `{manifest['denoiser']}`, {parameters(folder):,} parameters"
        + (" (of which the frozen CLIP text tower is counted too)" if name == "text" else "")
        + f"; predicts `{manifest['prediction_type']}`.",
        f"- Data: synthfaces {config['data']['size']}x{config['data']['size']} ({config['data'].get('variant', 'default')}"
        f" variant), train split, {config['data']['length']:,} faces, seed {config['data']['seed']}; condition dropout "
        f"{config['condition_dropout']}." if config["modality"] else
        f"- Data: synthfaces {config['data']['size']}x{config['data']['size']} ({config['data'].get('variant', 'default')}"
        f" variant), train split, {config['data']['length']:,} faces, seed {config['data']['seed']} (images only).",
        f"- {step:,} steps at batch {config['batch_size']} (x{config['grad_accum']} accumulation), AdamW lr "
        f"{config['lr']}, {config['lr_schedule']} decay after {config['warmup_steps']} warm-up steps, EMA "
        f"{config['ema_decay']}, {config['mixed_precision']} autocast; noise schedule {schedule['beta_schedule']} "
        f"beta {schedule['beta_start']}..{schedule['beta_end']}, {schedule['num_train_timesteps']} steps.",
        f"- Time: {seconds / 3600:.2f} h wall clock"
        + (f" in {legs} legs (resumed from checkpoints)" if legs > 1 else " in one leg") + f"; {hardware}.",
    ]
    return "\n".join(lines)


def clip_section(folder: Path) -> str:
    trainer = json.loads((folder / "trainer.json").read_text())
    settings = trainer["settings"]
    config = json.loads((folder / "clip_config.json").read_text())
    return "\n".join([
        "### clip",
        f"- open_clip `CustomTextCLIP` from `clip_config.json` (text: width {config['text_cfg']['width']}, "
        f"{config['text_cfg']['layers']} layers; vision: {config['vision_cfg']['layers']}-layer ViT on "
        f"{config['vision_cfg']['patch_size']}x{config['vision_cfg']['patch_size']} patches), "
        f"{parameters(folder):,} parameters; open_clip's contrastive loss.",
        f"- Trained {trainer['step']:,} steps at batch {settings['batch_size']} on {settings['train_length']:,} "
        f"train-split image/caption pairs (lr {settings['lr']}, {settings['lr_schedule']}, weight decay "
        f"{settings['weight_decay']}){hard_negatives(settings)}, then frozen; its text tower is the text model's encoder.",
    ])


def hard_negatives(settings: dict) -> str:
    """The clause the CLIP section adds when the CLIP was trained with hard negatives."""
    weight = settings.get("hard_negatives", 0.0)
    if not weight:
        return ""
    contrasts = settings.get("contrasts", 1)
    flipped = ("with one attribute flipped" if contrasts == 1
               else f"with one attribute flipped, {contrasts} such captions per image, each flipping a different one")
    return (f", with hard negatives at weight {weight} (each image must also prefer its caption to the same caption "
            f"{flipped})")


def half_storage_sentence(composition: Path) -> str:
    """What the folder keeps in float16 and, when measured (``float16-check.json``), how far that moves predictions."""
    path = composition / HALF_CHECK
    check = json.loads(path.read_text()) if path.is_file() else {}
    stored = ("The UNets and the text tower (stored in the text model and in the CLIP) are kept"
              if "prior" in check.get("models", {}) else "The text tower, stored in the text model and in the CLIP, is kept")
    sentence = f"{stored} in float16 on disk and loaded as float32"
    if check:
        which = f"the {', '.join(check['models'])} models'" if "models" in check else "the text model's"
        sentence += (f": {which} predictions move by at most {check['max_abs_eps_difference']:.1e} "
                     f"(`{HALF_CHECK}`, written by `scripts/package_pretrained.py --check-half`)")
    return sentence + "."


def modality_parts(results: dict) -> dict[str, tuple[str, ...]]:
    """The face parts of the modalities the results' rows name, as their plugins declare them."""
    return face_parts(make_plugin_manager(), dict.fromkeys(m for row in results["rows"] for m in row["modalities"]))


def checks(results: dict) -> list[str]:
    """The targets, each with its measured figure and whether it holds."""
    rows = {row["name"]: row for row in results["rows"]}
    ceiling = results["ceiling"]
    figure_of = _single_figures(results)
    single = {m: rows[m]["figures"][f] for m, f in figure_of.items() if m in rows}
    lines = []
    for modality, figure in figure_of.items():
        if modality not in rows:
            continue
        value, target = single[modality], TARGETS[figure]
        held = value >= target or (figure == "mask_iou" and value >= CEILING_SHARE * ceiling[figure])
        extra = f" or {CEILING_SHARE:.0%} of the ceiling {ceiling[figure]:.3f}" if figure == "mask_iou" else ""
        lines.append(f"- {modality} alone: {figure} {value:.3f} (target {target}{extra}; real faces "
                     f"{ceiling[figure]:.3f}): {'holds' if held else 'NOT MET'}.")
    widest = max(results["rows"], key=lambda row: len(row["modalities"]))
    for modality in widest["modalities"]:
        figure = figure_of.get(modality)
        if figure is None:
            continue
        value = widest["figures"][figure]
        ratio = value / single[modality]
        lines.append(f"- {widest['name']}: {figure} {value:.3f} = {ratio:.1%} of {modality} alone "
                     f"(target at least {1 - WITHIN:.0%}): {'holds' if ratio >= 1 - WITHIN else 'NOT MET'}.")
    return lines


def checks_64(results: dict, compare: dict | None, composed_row: str | None = None) -> list[str]:
    """synthfaces-64's targets, each with its measured figure and whether it holds; the composition's are read
    from ``composed_row`` (default: the first row of every modality)."""
    rows = {row["name"]: row["figures"] for row in results["rows"]}
    figure_of = _single_figures(results)
    lines = []

    def check(what: str, value: float, target: float, holds: bool) -> None:
        lines.append(f"- {what}: {value:.3f} (target {target:.3f}): {'holds' if holds else 'NOT MET'}.")

    theirs = {} if compare is None else {row["name"]: row["figures"] for row in compare["rows"]}
    for modality, figure in figure_of.items():
        if modality not in rows:
            continue
        if figure == "edge_f1":
            if modality in theirs:
                check(f"{modality} alone: {figure} (target: synthfaces-32's)", rows[modality][figure],
                      theirs[modality][figure], rows[modality][figure] >= theirs[modality][figure])
            continue
        for name, target in TARGETS_64.items():
            if name.split(".")[0] == figure and name in rows[modality]:
                check(f"{modality} alone: {name}", rows[modality][name], target, rows[modality][name] >= target)
    composed = [row for row in results["rows"] if row.get("inputs", "full") == "full"
                and all(m in figure_of for m in row["modalities"])]
    widest = (next(row for row in composed if row["name"] == composed_row) if composed_row
              else max(composed, key=lambda row: len(row["modalities"])))
    oracle = rows.get("joint oracle")
    for modality in widest["modalities"]:
        figure = figure_of.get(modality)
        if figure is None or modality not in rows:
            continue
        value = widest["figures"][figure]
        check(f"{widest['name']}: {figure} as a share of {modality} alone", value / rows[modality][figure],
              1 - WITHIN_64, value >= (1 - WITHIN_64) * rows[modality][figure])
        if oracle is not None:
            check(f"{widest['name']}: {figure} as a share of the joint oracle's", value / oracle[figure],
                  ORACLE_SHARE, value >= ORACLE_SHARE * oracle[figure])
    hair = "attribute_accuracy.hair_color"
    text = next((m for m, f in figure_of.items() if f == "attribute_accuracy" and m in rows), None)
    if text is not None and hair in widest["figures"] and hair in rows[text]:
        gap = widest["figures"][hair] - rows[text][hair]
        check(f"{widest['name']}: hair colour minus {text} alone's", gap, -HAIR_POINTS, gap >= -HAIR_POINTS)
    return lines


def _single_figures(results: dict) -> dict[str, str]:
    """Each modality of one face part, with the figure of that part (PART_FIGURE's order: mask, sketch, caption)."""
    parts = modality_parts(results)
    return {m: figure for part, figure in PART_FIGURE.items() for m, given in parts.items() if given == (part,)}


def vae_section(composition: Path, hardware: str) -> str:
    """The VAE every model's latents come from: architecture, training, and its reconstructions as the judges
    read them (from the run's records that package_pretrained copied into ``vae-training/``)."""
    from mcdm.eval.reconstruction import JUDGED, figures_markdown

    records = composition / VAE_RECORDS
    config = json.loads((records / "config.json").read_text())
    summary = json.loads((records / "summary.json").read_text())
    step, seconds, legs = training_legs(records / "log.csv")
    vae = json.loads((composition / "prior" / "vae" / "config.json").read_text())
    widths = vae["block_out_channels"]
    size, factor = config["data"]["size"], 2 ** (len(widths) - 1)
    figures = summary["reconstruction"]
    costs = [f"{name} {figures['difference'][name]:+.4f}" for name in JUDGED]
    within = all(abs(figures["difference"][name]) <= VAE_POINTS for name in JUDGED)
    return "\n".join([
        "### vae",
        f"- diffusers `AutoencoderKL`, {size}x{size}x3 <-> {size // factor}x{size // factor}x{vae['latent_channels']}"
        f" latents, widths {widths}, {vae['layers_per_block']} ResNet layer(s) per encoder block, "
        f"{parameters(composition / 'prior' / 'vae'):,} parameters; scaling factor {vae['scaling_factor']:.5f}. "
        "Each model folder holds a copy (`vae/`); they are one VAE (the composition checks their identity).",
        f"- Data: synthfaces {size}x{size}, train split, {config['data']['length']:,} faces, seed "
        f"{config['data']['seed']}. Loss: L1 plus {config['kl_weight']:g} x KL.",
        f"- {step:,} steps at batch {config['batch_size']}, AdamW lr {config['lr']}, {config['lr_schedule']} after "
        f"{config['warmup_steps']} warm-up steps; time {seconds / 3600:.2f} h wall clock"
        + (f" in {legs} legs (resumed from checkpoints)" if legs > 1 else " in one leg") + f"; {hardware}.",
        "",
        figures_markdown(figures).strip(),
        "",
        f"Target: the judges' figures of reconstructions within {VAE_POINTS:.2f} of the real faces' ("
        + ", ".join(costs) + f"): {'holds' if within else 'NOT MET'}.",
    ])


def comparison_table(results: dict, compare: dict) -> str:
    """The rows both evaluations hold, this composition's figure beside synthfaces-32's."""
    theirs = {row["name"]: row["figures"] for row in compare["rows"]}
    theirs["real held-out faces (judges' ceiling)"] = compare["ceiling"]
    names = ("mask_iou", "edge_f1", "attribute_accuracy", "fd")
    lines = ["| row | " + " | ".join(f"{n}: this / 32x32" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for row in [{"name": "real held-out faces (judges' ceiling)", "figures": results["ceiling"]}, *results["rows"]]:
        if row["name"] in theirs:
            lines.append(f"| {row['name']} | " + " | ".join(
                f"{row['figures'][n]:.3f} / {theirs[row['name']][n]:.3f}" for n in names) + " |")
    return "\n".join(lines)


def write_card(composition: Path, results: dict, command: str, hardware: str, note: str = "", *,
               judges: str = "judges-32", compare: dict | None = None, compare_command: str = "",
               composed_row: str | None = None) -> Path:
    size_bytes = sum(p.stat().st_size for p in composition.rglob("*") if p.is_file())
    models = [name for name in ("prior", "sketch", "segmentation", "text") if (composition / name).is_dir()]
    size = json.loads((composition / "prior" / "training-config.json").read_text())["data"]["size"]
    latent = (composition / "prior" / "vae").is_dir()
    where = (f"{size}x{size} synthetic faces, in a small VAE's latent space," if latent
             else f"{size}x{size} synthetic faces,")
    if compare is not None:
        comparison = ["## Beside synthfaces-32",
                      f"The same rows of synthfaces-32 (`{compare_command}`), judged by its own evaluation; each cell "
                      "is this composition's figure / synthfaces-32's.", comparison_table(results, compare)]
    else:
        comparison = []
    text = "\n\n".join([
        f"# {composition.name}: a prior and three modality models on {where} composed with MCDM",
        "Four denoisers trained independently (each on its own, none on paired inputs) and one small CLIP"
        + (", all on one VAE's latents" if latent else "") + ". "
        "`composition.yaml` composes them; `Composer.from_pretrained(\"" + composition.name + "\")` or "
        f"`mcdm generate --model {composition.name}` load the folder, checking `SHA256SUMS` first. "
        f"{size_bytes / 1e6:.1f} MB in all: safetensors and JSON only. " + half_storage_sentence(composition),
        "## Models",
        *([note] if note else []),
        *([vae_section(composition, hardware)] if latent else []),
        *(model_section(name, composition / name, hardware) for name in models),
        clip_section(composition / "clip"),
        "## Evaluation on held-out faces",
        f"Command: `{command}`. Every row generates one sample for each of {results['n']} faces of the synthfaces "
        "**test** split (never used in training) and scores it against that face's sketch, mask and first caption "
        f"with the judges in `pretrained/{judges}` (see their card). The first row scores the real faces "
        "themselves: the judges' ceiling. Bold: the figure a row's own modalities control.",
        markdown_table(results, modality_parts(results)).strip(),
        "Targets:\n" + "\n".join(checks_64(results, compare, composed_row) if size == 64 else checks(results)),
        *comparison,
        "## Limits",
        f"{size}x{size} synthetic faces only; the judges that score them are themselves small networks (their "
        "ceilings are in the first row). The edge F1 of a sample with no sketch is far from zero at this size: "
        "Canny edges of any face-like image fall within 2 pixels of many of another face's edges, so read the "
        "sketch figures against the prior's row.",
    ]) + "\n"
    (composition / "MODEL_CARD.md").write_text(text)
    write_checksums(composition)
    return composition / "MODEL_CARD.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--composition", type=Path, required=True)
    parser.add_argument("--eval", type=Path, required=True, help="folder holding results.json")
    parser.add_argument("--eval-command", required=True)
    parser.add_argument("--hardware", required=True, help="where the models were trained, in words")
    parser.add_argument("--note", default="", help="a paragraph on how the runs went, placed before the models")
    parser.add_argument("--judges", default="judges-32", help="the judges the evaluation used (pretrained/NAME)")
    parser.add_argument("--compare", type=Path, help="an evaluation of synthfaces-32 with the same rows (results.json)")
    parser.add_argument("--compare-command", default="", help="the command that made --compare")
    parser.add_argument("--composed-row", help="the row the 64x64 composition targets read (default: the first "
                                               "row of every modality), e.g. the one composition.yaml's settings make")
    args = parser.parse_args()
    results = json.loads((args.eval / "results.json").read_text())
    compare = json.loads((args.compare / "results.json").read_text()) if args.compare else None
    card = write_card(args.composition, results, args.eval_command, args.hardware, args.note, judges=args.judges,
                      compare=compare, compare_command=args.compare_command, composed_row=args.composed_row)
    print(f"wrote {card}")


if __name__ == "__main__":
    main()
