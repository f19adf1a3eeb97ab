"""The evaluation's pictures: the samples of every row, the widest row beside the real faces, the figures as bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcdm.eval.scoring import FIGURES


def write_pictures(results: dict, out: Path, examples: int = 8) -> None:
    """samples.png (one line per row, its name at the left: its first ``examples`` samples, at twice their size),
    composed_vs_real.png (up to 64 samples of the row with the most modalities beside as many real faces)
    and figures.png (the constraint figures of every row as bars)."""
    from mcdm.imageio import labelled_rows, save_png_atomic

    out.mkdir(parents=True, exist_ok=True)
    columns = min(examples, min(len(images) for images in results["samples"].values()))
    save_png_atomic(labelled_rows({name: images[:columns] for name, images in results["samples"].items()}),
                    out / "samples.png")
    bar_chart(results, out / "figures.png")
    widest = max(results["rows"], key=lambda row: len(row["modalities"]))
    save_png_atomic(side_by_side(results["samples"][widest["name"]][:64], results["real"][:64],
                                 labels=(widest["name"], "real held-out faces")), out / "composed_vs_real.png")


def side_by_side(left: np.ndarray, right: np.ndarray, labels: tuple[str, str], scale: int = 2):
    """Two square grids of uint8 images (N, H, W, 3), each under its label, on one white sheet."""
    from PIL import Image, ImageDraw, ImageFont

    from mcdm.imageio import grid

    columns = int(np.ceil(np.sqrt(len(left))))
    sheets = [grid([Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
                    for image in images], columns=columns) for images in (left, right)]
    header, gap = 20, 16
    width = sum(sheet.width for sheet in sheets) + gap
    canvas = Image.new("RGB", (width, header + max(sheet.height for sheet in sheets)), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for sheet, label in zip(sheets, labels):
        draw.text((x + 4, 4), label, fill="black", font=ImageFont.load_default(size=12))
        canvas.paste(sheet, (x, header))
        x += sheet.width + gap
    return canvas


def bar_chart(results: dict, path: Path) -> None:
    """One group of bars per figure (mask IoU, edge F1, attribute accuracy), one bar per row, the ceiling dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    fig, ax = plt.subplots(figsize=(min(11.0, 4 + 0.25 * len(rows) * len(FIGURES)), 3.6), dpi=120)
    width = 0.8 / len(rows)
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(rows), 2)))
    for i, row in enumerate(rows):
        xs = np.arange(len(FIGURES)) + (i - (len(rows) - 1) / 2) * width
        ax.bar(xs, [row["figures"][f] for f in FIGURES], width, label=row["name"], color=colours[i])
    for j, figure in enumerate(FIGURES):
        ax.hlines(results["ceiling"][figure], j - 0.4, j + 0.4, colors="black", linestyles="dashed", linewidth=1)
    ax.set_xticks(np.arange(len(FIGURES)), ["mask IoU", "edge F1", "attribute accuracy"])
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{results['n']} held-out faces per row; dashed: real faces (the judges' ceiling)", fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
