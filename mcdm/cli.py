"""The ``mcdm`` command. Imports stay inside commands so that ``mcdm --help`` never imports torch."""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from pathlib import Path

import click

from mcdm.errors import MCDMError
from mcdm.eval import MIN_FACES
from mcdm.seeds import MAX_SEED


class OneLineError(click.ClickException):
    """An error printed as one line, with the exit status its kind calls for (2: usage, 1: runtime)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(" ".join(message.split()))  # a third-party message's newlines would break the one line
        self.exit_code = exit_code


def debug_enabled() -> bool:
    """``--debug`` or ``MCDM_DEBUG=1``: let tracebacks through."""
    context = click.get_current_context(silent=True)
    flag = bool(context and context.find_root().params.get("debug"))
    return flag or os.environ.get("MCDM_DEBUG", "").strip().lower() in {"1", "true", "yes"}


def friendly_errors(command):
    """Every failure as one line: MCDMError with exit 2 (what was passed) or 1 (what was found); anything else
    as one line naming its type, unless debugging."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except MCDMError as exc:
            if debug_enabled():
                raise
            raise OneLineError(str(exc), 2 if exc.usage else 1) from exc
        except Exception as exc:
            if debug_enabled():
                raise
            detail = str(exc).strip() or "no message"
            raise OneLineError(f"unexpected {type(exc).__name__}: {detail} (MCDM_DEBUG=1 or --debug shows the "
                               "traceback)", 1) from exc

    return wrapper


def parse_weights(values: tuple[str, ...]) -> dict[str, float]:
    from mcdm.validate import check_weight

    weights = {}
    for name, value in parse_assignments(values, "--weight").items():
        try:
            number = float(value)
        except ValueError:
            raise click.BadParameter(f"weight of {name!r} is not a number: {value!r}", param_hint="--weight")
        weights[name] = check_weight(name, number)
    return weights


def parse_assignments(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}", param_hint=option)
        if name in pairs:
            raise click.BadParameter(f"{name!r} given twice", param_hint=option)
        pairs[name] = rest
    return pairs


REQUIRE_CHECKSUMS = click.option(
    "--require-checksums", is_flag=True,
    help="Refuse model folders without a SHA256SUMS listing every file (always so for compositions found by name).")


def one_line_warnings(message, category, filename, lineno, file=None, line=None) -> str:
    """warnings.formatwarning for the command line: the message alone, no source line."""
    return f"warning: {message}\n"


@click.group()
@click.version_option(package_name="mcdm")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors (also MCDM_DEBUG=1).")
def cli(debug):
    """mcdm: compose independently trained diffusion models (sketch, mask, text, ...) at sampling time."""


@cli.command()
@friendly_errors
def plugins():
    """Print the registered plugins, modalities and denoiser types as JSON."""
    from mcdm.plugins import make_plugin_manager

    click.echo(json.dumps(make_plugin_manager().describe(), indent=2))


@cli.command()
@click.option("--model", default="synthfaces-32", show_default=True, help="Composition name or folder.")
@click.option("--cond", "conds", multiple=True, metavar="NAME=VALUE", help="A condition, e.g. sketch=s.png or text='...'.")
@click.option("--weight", "weights", multiple=True, metavar="NAME=FLOAT", help="Weight of a modality (negative: NOT).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override the composition config, e.g. modalities.text.baseline=own (a path: relative to the "
                   "composition's folder).")
@click.option("--add-model", "added", multiple=True, metavar="NAME=PATH",
              help="Add the model folder PATH (relative to the current folder) as modality NAME for this call; a "
                   "NAME already composed keeps its settings and gets this model.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampling steps [composition default].")
@click.option("--scheduler", default=None, help="ddpm, ddim, dpm++ or euler [composition default].")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--num-images", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="Autocast precision of the networks (bf16/fp16 pay off on a GPU).")
@click.option("--compile", "compile_models", is_flag=True, help="torch.compile the networks (GPU).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG file: one image, or a grid of all of them [mcdm-out.png unless --out-dir is given].")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for one PNG per image: 000.png, 001.png, ... (with --out: both).")
@click.option("--requests", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A JSONL file, one request a line (mcdm.batch), generated into --out-dir; resumable, and shared "
                   "between the processes of accelerate launch or torchrun.")
@REQUIRE_CHECKSUMS
@friendly_errors
def generate(model, conds, weights, overrides, added, steps, scheduler, seed, num_images, device, precision,
             compile_models, out, out_dir, requests, require_checksums):
    """Generate images from any subset of the composition's modalities."""
    from mcdm.pretrained import open_composition
    from mcdm.validate import (check_device_available, check_device_name, check_name, check_output_file,
                               check_request, check_writable_folder)

    overrides += tuple(f"modalities.{name}.path={Path(path).expanduser().resolve()}"  # absolute: any folder works
                       for name, path in parse_assignments(added, "--add-model").items())
    if requests is not None and (conds or weights or out is not None or out_dir is None):
        raise click.UsageError("--requests takes --out-dir, and its lines give conditions, weights and seeds "
                               "(no --cond, --weight or --out)")

    # everything the arguments and the composition's files can tell, before torch or a model loads
    conditions = parse_assignments(conds, "--cond")
    weight_values = parse_weights(weights)
    check_name(model, "--model")
    if out is None and out_dir is None:
        out = Path("mcdm-out.png")
    if out is not None:
        check_output_file(out, ".png", "--out")
    if out_dir is not None:
        check_writable_folder(out_dir, "--out-dir")
    device = check_device_name(device)
    folder, config = open_composition(model, overrides, require_checksums=require_checksums)
    if requests is not None:
        return _generate_requests(folder, config, requests, device, precision, compile_models, out_dir)
    check_request(folder, config, conditions=conditions, weights=weight_values, steps=steps, scheduler=scheduler,
                  num_images=num_images)
    check_device_available(device)

    from mcdm.compose import Composer
    from mcdm.imageio import save_png_atomic, grid

    composer = Composer.from_config(config, root=folder, device=device, precision=precision, compile=compile_models,
                                    conditions=conditions)
    images = composer.generate(conditions, num_images=num_images, steps=steps, seed=seed,
                               scheduler=scheduler, weights=weight_values)
    written = []
    if out is not None:
        written.append(str(save_png_atomic(grid(images), out)))
    if out_dir is not None:
        paths = [save_png_atomic(image, out_dir / f"{i:03d}.png") for i, image in enumerate(images)]
        written.append(f"{out_dir}/ ({paths[0].name}" + (f" to {paths[-1].name})" if len(paths) > 1 else ")"))
    click.echo(f"wrote {len(images)} image(s) to {' and '.join(written)}")


def _generate_requests(folder, config, requests, device, precision, compile_models, out_dir):
    """``generate --requests``: every line checked before a model loads, then this process's share generated."""
    from mcdm.batch import model_checksums, read_requests, run_requests
    from mcdm.validate import check_device_available

    lines = read_requests(requests, folder, config)
    check_device_available(device)
    from mcdm.compose import Composer

    def make_composer(where: str):
        return Composer.from_config(config, root=folder, device=where, precision=precision, compile=compile_models)

    summary = run_requests(lines, out_dir, make_composer, checksums=model_checksums(folder, config), device=device,
                           echo=click.echo)
    click.echo(f"process {summary['process']}/{summary['world_size']}: generated {summary['generated']} of "
               f"{summary['total']} request(s), {summary['skipped']} already done; manifest: {out_dir / 'manifest.jsonl'}")


@cli.command()
@click.option("--model", default="synthfaces-32", show_default=True, help="Composition name or folder.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampling steps [composition default].")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("mcdm-demo.png"), show_default=True)
@click.option("--inputs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A folder of face-*/ folders, each with <modality>.png or .txt [the shipped examples].")
@friendly_errors
def demo(model, steps, seed, out, inputs):
    """Compose the shipped models on held-out example inputs: one grid, every subset of the modalities."""
    import time

    from mcdm.validate import check_output_file

    check_output_file(out, ".png", "--out")
    from mcdm.demo import EXAMPLES, run_demo

    started = time.perf_counter()
    path = run_demo(model, out, steps=steps, seed=seed, examples=inputs or EXAMPLES)
    click.echo(f"wrote {path} ({time.perf_counter() - started:.0f} s)")


@cli.command(name="eval")
@click.option("--model", default="synthfaces-32", show_default=True, help="Composition name or folder.")
@click.option("--judges", default="judges-32", show_default=True, help="Judges name or folder.")
@click.option("--n", type=click.IntRange(min=MIN_FACES), default=64, show_default=True,
              help=f"Held-out faces per row (at least {MIN_FACES}: the Fréchet distance needs a covariance).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampling steps [composition default].")
@click.option("--scheduler", default=None, help="ddpm, ddim, dpm++ or euler [composition default].")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--reference", type=click.IntRange(min=2), default=1000, show_default=True,
              help="Real held-out faces the Fréchet distance compares with.")
@click.option("--diversity-samples", type=click.IntRange(min=0), default=4, show_default=True,
              help="Samples per face (for 8 faces) that the diversity figure compares; 0 or 1 leaves it out.")
@click.option("--rows", "row_set", type=click.Choice(["standard", "partial", "negation", "methods"]),
              default="standard", show_default=True,
              help="standard: the prior, every subset of the modalities; partial: partial inputs and the options; "
                   "methods: the naive sum against particles, balanced AND and MALA (docs/method.md).")
@click.option("--ddpm-steps", type=click.IntRange(min=1), default=50, show_default=True,
              help="ddpm steps of the methods rows that need the stochastic sampler (--rows methods).")
@click.option("--tune", "tune_n", type=click.IntRange(min=0), default=0, show_default=True,
              help="Add a row with weights tuned on this many validation faces (never scored); 0: no tuning.")
@click.option("--oracle", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A joint model folder (plugins/mcdm-joint) to add as the paired-data oracle's rows.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("mcdm-eval"), show_default=True)
@click.option("--only", multiple=True, metavar="ROW",
              help="Run only the row of this name (repeatable) [every row of --rows].")
@click.option("--resume", is_flag=True,
              help="Reuse the rows under OUT/rows/ that a run with the same models and options finished.")
@REQUIRE_CHECKSUMS
@friendly_errors
def evaluate(model, judges, n, steps, scheduler, seed, reference, diversity_samples, row_set, ddpm_steps, tune_n,
             oracle, out, only, resume, require_checksums):
    """Score every subset of the modalities on held-out faces with the judges; write a table and a sample grid."""
    from mcdm.eval.run import EvalOptions, run_eval

    evaluation = run_eval(EvalOptions(
        model=model, judges=judges, n=n, steps=steps, scheduler=scheduler, seed=seed, reference=reference,
        diversity_samples=diversity_samples, rows=row_set, ddpm_steps=ddpm_steps, tune=tune_n, oracle=oracle, out=out,
        require_checksums=require_checksums, only=only, resume=resume))
    click.echo(evaluation.table)
    click.echo(f"wrote {out / 'results.json'} and {out / 'results.md'}")


@cli.command()
@click.option("--model", default="synthfaces-32", show_default=True, help="Composition name or folder.")
@click.option("--batch-sizes", default="1,16,64", show_default=True, help="Comma-separated batch sizes.")
@click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--scheduler", default="ddim", show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--speed/--no-speed", default=True, show_default=True,
              help="Time sampling against the hand-written loop (--no-speed: only the --quality-n curve).")
@click.option("--quality-n", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also score the composition, with its own settings, under DDPM 1000, DDIM 50, DPM++ 20 and 10 "
                   "on this many faces.")
@click.option("--judges", default="judges-32", show_default=True, help="Judges for --quality-n.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("mcdm-bench"), show_default=True)
@friendly_errors
def bench(model, batch_sizes, steps, scheduler, repeats, speed, quality_n, judges, out):
    """Sampling speed for N = 0..3 modalities against a hand-written loop making the same network calls."""
    try:
        sizes = [int(b) for b in batch_sizes.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {batch_sizes!r}", param_hint="--batch-sizes")
    if not speed and not quality_n:
        raise click.UsageError("--no-speed leaves nothing to do without --quality-n")
    from mcdm.validate import check_scheduler_name, check_writable_folder

    check_writable_folder(out, "--out")
    check_scheduler_name(scheduler)
    from mcdm.bench import quality_report, speed_report
    from mcdm.compose import Composer

    composer = Composer.from_pretrained(model)
    out.mkdir(parents=True, exist_ok=True)
    command = "mcdm bench " + " ".join(sys.argv[2:])
    if speed:
        speed_report(composer, sizes, steps=steps, scheduler=scheduler, repeats=repeats, out=out, command=command,
                     echo=click.echo)
    if quality_n:
        from mcdm.eval.judges import Judges
        from mcdm.pretrained import resolve

        click.echo(quality_report(composer, Judges.load(resolve(judges)), n=quality_n, out=out, command=command))


@cli.command()
@click.option("--model", default="synthfaces-32", show_default=True, help="Composition name or folder.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 opens it to the network.")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@friendly_errors
def serve(model, host, port, device):
    """Serve a page to draw, paint and type the inputs and compose them in the browser (needs mcdm[serve])."""
    from mcdm.serve.app import serve as run_server

    run_server(model, host, port, device=device)


@cli.command()
@click.argument("kind", metavar="KIND")
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--resume", is_flag=True, help="Continue from the newest readable checkpoint in the run folder.")
@click.option("--help-config", is_flag=True,
              help="Print KIND's configuration keys (type, default, what it does) as a Markdown table, and exit.")
@friendly_errors
def train(kind, config, overrides, resume, help_config):
    """Train a KIND (denoiser, clip, judges, vae, or a plugin's) from a YAML CONFIG; runs under accelerate launch too."""
    from mcdm.config import load_config
    from mcdm.config_reference import table
    from mcdm.plugins import make_plugin_manager

    trainer = make_plugin_manager().trainer(kind)
    if help_config:
        click.echo(table(trainer.schema), nl=False)
        return
    if config is None:
        raise click.UsageError(f"mcdm train {kind} needs a CONFIG file (a YAML mapping; --help-config lists its keys)")
    result = trainer.run(load_config(trainer.schema, config, overrides), resume)
    click.echo(result.summary)


@cli.command(name="import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--modality", default=None, help="The modality its conditional UNet serves [none: a prior].")
@friendly_errors
def import_folder(folder, modality):
    """Make a stock diffusers folder (DDPMPipeline, DDIMPipeline, UNet2DModel) an mcdm model folder, in place."""
    from mcdm.plugins import make_plugin_manager
    from mcdm.stock import import_folder as run_import

    manifest = run_import(folder, modality, make_plugin_manager())
    click.echo(f"wrote {manifest}: {folder} serves {f'modality {modality!r}' if modality else 'as a prior'}")


def _attach_optional_groups():
    """Command groups owned by subpackages (data, training, evaluation)."""
    from mcdm.data.cli import data

    cli.add_command(data)


_attach_optional_groups()


def main():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # mcdm never downloads at run time
    warnings.formatwarning = one_line_warnings
    cli(prog_name="mcdm")


if __name__ == "__main__":
    sys.exit(main())
