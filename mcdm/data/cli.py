"""The ``mcdm data`` command group. Importing this module imports click only: the work is imported in the command."""

from pathlib import Path

import click

MIN_SIZE, MAX_SIZE = 32, 256  # mirrors mcdm.data.render, which this module must not import (numpy, PIL)
VARIANT_NAMES = ("default", "dark-hair", "studio")  # mirrors mcdm.data.variants.VARIANTS


@click.group(name="data")
def data() -> None:
    """Datasets: the built-in synthetic faces and readers for real face datasets."""


@data.command()
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Directory to create.")
@click.option("--n", "n", default=1000, show_default=True, type=int, help="Number of faces.")
@click.option("--size", default=64, show_default=True, type=int, help=f"Pixels, {MIN_SIZE}..{MAX_SIZE}.")
@click.option("--seed", default=0, show_default=True, type=int, help="Dataset seed (>= 0).")
@click.option(
    "--layout",
    type=click.Choice(["celeba", "folder"]),
    default="celeba",
    show_default=True,
    help="celeba: a CelebAMask-HQ and Multi-Modal-CelebA-HQ tree; folder: images/ masks/ sketches/ captions/.",
)
@click.option("--image-format", type=click.Choice(["png", "jpg"]), default="png", show_default=True)
@click.option("--test-fraction", default=0.1, show_default=True, type=float, help="Share of faces in the test split.")
@click.option("--workers", default=None, type=int, help="Worker processes (default: all cores).")
@click.option("--variant", type=click.Choice(VARIANT_NAMES), default="default", show_default=True,
              help="The distribution the faces are drawn from (mcdm.data.variants).")
def synth(
    out: Path, n: int, size: int, seed: int, layout: str, image_format: str, test_fraction: float, workers: int | None,
    variant: str,
) -> None:
    """Write a synthfaces dataset to OUT in a real dataset's layout."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise click.BadParameter(f"must be between {MIN_SIZE} and {MAX_SIZE}, got {size}", param_hint="--size")
    if n < 1:
        raise click.BadParameter(f"must be at least 1, got {n}", param_hint="--n")
    if seed < 0:
        raise click.BadParameter(f"must be >= 0, got {seed}", param_hint="--seed")
    if not 0.0 <= test_fraction < 1.0:
        raise click.BadParameter(f"must be in [0, 1), got {test_fraction}", param_hint="--test-fraction")
    if workers is not None and workers < 1:
        raise click.BadParameter(f"must be at least 1, got {workers}", param_hint="--workers")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise click.ClickException(f"{out} already exists and is not empty; choose a new directory")

    from mcdm.data.writer import write_synthfaces

    try:
        path = write_synthfaces(
            out, n, size, seed, layout=layout, image_format=image_format,  # type: ignore[arg-type]
            test_fraction=test_fraction, workers=workers, variant=variant,
        )  # fmt: skip
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"wrote {n} faces of {size}x{size} to {path}")
