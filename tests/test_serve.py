"""``mcdm serve``: the page's requests reproduce through their bundle, bad input is a message, and a real browser
draws, paints, types and generates against a server on tiny models."""

import os
import shlex
import shutil
import socket
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from conftest import TINY_TEXT, ddpm_schedule
from mcdm.checkpoint import save_model
from mcdm.cli import cli
from mcdm.errors import MCDMError
from mcdm.modality import InputKind

pytest.importorskip("gradio", reason="mcdm serve needs the serve extra: pip install 'mcdm[serve]'")

from mcdm.serve.app import CANVAS, Controls, Server, serve  # noqa: E402
from mcdm.serve.request import BUNDLE_FILE, COMMAND_FILE, RESULT_FILE  # noqa: E402

# Gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix
pytestmark = [pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]
SMALL = {"sample_size": 32, "block_out_channels": (8, 16), "layers_per_block": 1, "attention": False}
CAPTION = "This woman has blond hair and wears eyeglasses."


@pytest.fixture(scope="module")
def tiny_faces(tmp_path_factory, plugins):
    """A composition folder like synthfaces-32 with tiny random models: sketch, segmentation, text and toy_a."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-faces")
    unet = plugins.denoiser_class("unet")
    schedule = ddpm_schedule()
    save_model(folder / "prior", unet.build(**SMALL), modality=None, schedule_config=schedule)
    for name, channels in (("sketch", 1), ("segmentation", 20), ("toy_a", 1)):
        save_model(folder / name, unet.build(cond_channels=channels, **SMALL), modality=name, schedule_config=schedule)
    text = plugins.denoiser_class("unet_text").build(sample_size=32, block_out_channels=(8, 16), attention_head_dim=2,
                                                     text_cfg=TINY_TEXT)
    save_model(folder / "text", text, modality="text", schedule_config=schedule)
    (folder / "composition.yaml").write_text(yaml.safe_dump({
        "name": "tiny-faces", "prior": "prior", "steps": 3,
        "modalities": {"sketch": {"path": "sketch", "baseline": "own"}, "segmentation": {"path": "segmentation"},
                       "text": {"path": "text", "baseline": "own"}, "toy_a": {"path": "toy_a"}}}))
    return folder


@pytest.fixture(scope="module")
def server(tiny_faces, tmp_path_factory, plugins):
    from mcdm.compose import Composer
    from mcdm.config import CompositionConfig, load_config

    config = load_config(CompositionConfig, tiny_faces / "composition.yaml")
    composer = Composer.from_config(config, root=tiny_faces, plugins=plugins)
    return Server(composer, config, tiny_faces, tmp_path_factory.mktemp("serve-work"))


def page_values(server, **changes):
    """The values the page would send (keys stand for its components), with a drawing, a painting and a caption."""
    controls, data = [], {}
    for name in server.composer.models:
        keys = {field: f"{name}.{field}" for field in ("on", "value", "upload", "weight", "start", "end", "baseline")}
        controls.append(Controls(name, server.specs[name], **keys))
        data.update({keys["on"]: name != "toy_a", keys["value"]: None, keys["upload"]: None, keys["weight"]: 1.0,
                     keys["start"]: 0.0, keys["end"]: 1.0, keys["baseline"]: "own"})
    sketch = np.full((CANVAS, CANVAS, 3), 255, np.uint8)
    sketch[60:200, 100:104] = 0  # a stroke
    mask = np.full((CANVAS, CANVAS, 3), 255, np.uint8)  # unknown ...
    mask[80:180, 80:180] = (204, 0, 0)  # ... but for a patch of skin
    data.update({"sketch.value": {"composite": sketch}, "segmentation.value": {"composite": mask},
                 "text.value": CAPTION})
    globals_ = {key: key for key in ("scheduler", "steps", "seed", "num_images", "corrector_steps", "corrector_size")}
    data.update({"scheduler": "dpm++", "steps": 3, "seed": 5, "num_images": 2, "corrector_steps": 0,
                 "corrector_size": 0.1})
    data.update(changes)
    return data, controls, globals_


def test_every_modality_gets_the_component_its_plugin_declares(server):
    kinds = {name: spec.kind if spec else None for name, spec in server.specs.items()}
    assert kinds == {"sketch": InputKind.IMAGE, "segmentation": InputKind.LABEL_MAP, "text": InputKind.TEXT,
                     "toy_a": InputKind.IMAGE}
    painter = server.specs["segmentation"]
    assert [label.name for label in painter.labels][:3] == ["background", "skin", "nose"]
    assert painter.unknown == 255 and server.specs["text"].examples


def test_the_bundle_command_reproduces_the_page_bit_for_bit(server, tmp_path):
    data, controls, globals_ = page_values(server, **{"text.weight": -0.5, "sketch.start": 0.2})
    request = server.request(data, controls, globals_)
    steps = []
    images = server.generate(request, lambda i, x0: steps.append((i, x0 is not None)))
    assert [i for i, _ in steps] == [0, 1, 2] and any(preview for _, preview in steps)
    with zipfile.ZipFile(request.folder / BUNDLE_FILE) as bundle:
        bundle.extractall(tmp_path)
    composition = yaml.safe_load((tmp_path / "composition.yaml").read_text())
    assert composition["modalities"]["text"]["weight"] == -0.5 and composition["modalities"]["sketch"]["start"] == 0.2
    labels = np.asarray(Image.open(tmp_path / "segmentation.png"))
    assert set(np.unique(labels)) == {1, 255}  # skin where painted, unknown elsewhere

    args = shlex.split((tmp_path / COMMAND_FILE).read_text())
    assert args[:2] == ["mcdm", "generate"]
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        result = CliRunner().invoke(cli, args[1:])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    page = np.asarray(Image.open(request.folder / RESULT_FILE))
    assert np.array_equal(np.asarray(Image.open(tmp_path / RESULT_FILE)), page)
    assert len(images) == 2 and page.shape[1] > 2 * 32  # both images, side by side in the grid


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"sketch.value": None}, "sketch: the canvas is empty"),
        ({"segmentation.value": {"composite": np.full((CANVAS, CANVAS, 3), 255, np.uint8)}},
         "segmentation: nothing is painted"),
        ({"segmentation.value": {"composite": np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)}},
         "colours of no label"),
        ({"text.value": "   "}, "text: the text is empty"),
        ({"text.weight": float("nan")}, "weight must be finite"),
        ({"steps": 1000}, "steps must be a whole number from 1 to 100"),
        ({"num_images": 0}, "number of images must be a whole number from 1 to 8"),
        ({"sketch.value": {"composite": np.zeros((2048, 2048, 3), np.uint8)}}, "at most 1024x1024"),
        ({"text.start": 0.9, "text.end": 0.1}, "0 <= start <= end <= 1"),
    ],
)
def test_bad_page_input_is_one_readable_error(server, changes, message):
    data, controls, globals_ = page_values(server, **changes)
    with pytest.raises(MCDMError, match=message):
        server.request(data, controls, globals_)


def test_a_bad_upload_is_refused_by_its_plugin_naming_it(server, tmp_path):
    bad = tmp_path / "drawing.png"
    bad.write_text("not an image")
    data, controls, globals_ = page_values(server, **{"sketch.upload": str(bad)})
    request = server.request(data, controls, globals_)
    with pytest.raises(MCDMError, match="sketch: .* is not a readable image"):
        server.generate(request, lambda i, x0: None)
    wrong = tmp_path / "labels.png"
    Image.fromarray(np.full((32, 32), 40, np.uint8)).save(wrong)
    data, controls, globals_ = page_values(server, **{"segmentation.upload": str(wrong)})
    with pytest.raises(MCDMError, match="label id 40 is outside"):
        server.generate(server.request(data, controls, globals_), lambda i, x0: None)


# --- the page in a real browser -----------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page(tiny_faces):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright")
    if not Path(CHROMIUM).is_file():
        pytest.skip("no chromium browser installed (scripts/setup.sh --test installs Debian's chromium)")
    port = free_port()
    app = serve(str(tiny_faces), port=port, quiet=True, block=False)
    outside = []
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(tempfile.mkdtemp(), executable_path=CHROMIUM, headless=True,
                                                       args=BROWSER_ARGS, viewport={"width": 1400, "height": 1800})
        page = context.new_page()
        page.on("request", lambda r: None if r.url.startswith(f"http://127.0.0.1:{port}") else outside.append(r.url))
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#sketch-canvas canvas", timeout=30_000)
        yield page
        context.close()
    app.close()
    assert not outside, f"the page reached outside the machine: {outside[:3]}"


def draw(page, element: str, points):
    """Mouse strokes on a canvas, in fractions of a CANVAS-sized square at the editor's centre."""
    page.locator(f"{element} button[aria-label='Brush']").first.click()
    box = page.locator(f"{element} canvas").first.bounding_box()
    cx, cy, side = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, CANVAS * 0.8
    page.mouse.move(cx + (points[0][0] - 0.5) * side, cy + (points[0][1] - 0.5) * side)
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(cx + (x - 0.5) * side, cy + (y - 0.5) * side, steps=6)
    page.mouse.up()


def set_number(page, element: str, value) -> None:
    field = page.locator(f"{element} input[type=number]").first
    field.fill(str(value))
    field.press("Enter")


REQUESTS = 0  # requests this module's server has answered


def generate(page) -> bytes:
    """Click generate, wait for a new PNG (or an error) and return the PNG's bytes (None on error)."""
    global REQUESTS
    REQUESTS += 1  # the final message of each request names it
    page.locator("#generate").click()
    page.wait_for_function("n => document.querySelector('#status').innerText.includes(`(request ${n})`)",
                           arg=REQUESTS, timeout=30_000)
    if "Error" in page.locator("#status").first.inner_text():
        return None
    return page.request.get(page.locator("#png a").first.get_attribute("href")).body()


def type_text(page, element: str, text: str) -> None:
    field = page.locator(f"{element} textarea").first
    field.fill(text)
    field.press("Tab")  # Gradio takes the value when the box loses focus


def pixels(png: bytes) -> np.ndarray:
    import io

    return np.asarray(Image.open(io.BytesIO(png)))


def test_the_page_composes_what_is_drawn_painted_and_typed(page, tmp_path):
    for name in ("sketch", "segmentation", "text", "toy_a"):  # an outside plugin's modality is on the page too
        assert page.locator(f"#modality-{name}").count() >= 1
    page.locator("#toy_a-on input").first.uncheck()
    draw(page, "#sketch-canvas", [(0.3, 0.2), (0.3, 0.8), (0.7, 0.8)])
    draw(page, "#segmentation-canvas", [(0.3, 0.4), (0.7, 0.4), (0.7, 0.6)])
    type_text(page, "#text-text", CAPTION)
    set_number(page, "#num-images", 2)

    first = generate(page)
    assert first is not None, page.locator("#status").first.inner_text()
    assert "done: 2 image(s)" in page.locator("#status").first.inner_text()
    assert page.locator("#gallery img").count() >= 2 and page.locator("#preview img").count() == 1
    bundle = page.request.get(page.locator("#bundle a").first.get_attribute("href")).body()

    assert np.array_equal(pixels(generate(page)), pixels(first))  # same seed, same inputs: the same images
    type_text(page, "#text-text", "The person has black hair and has no beard. The person wears a hat.")
    other_caption = generate(page)
    assert not np.array_equal(pixels(other_caption), pixels(first))
    set_number(page, "#text-weight", -1)
    assert not np.array_equal(pixels(generate(page)), pixels(other_caption))

    (tmp_path / BUNDLE_FILE).write_bytes(bundle)  # the first request, reproduced from its download
    with zipfile.ZipFile(tmp_path / BUNDLE_FILE) as archive:
        archive.extractall(tmp_path / "request")
    args = shlex.split((tmp_path / "request" / COMMAND_FILE).read_text())
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path / "request")
        result = CliRunner().invoke(cli, args[1:])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "request" / RESULT_FILE)), pixels(first))


def test_a_bad_upload_is_a_message_and_the_server_goes_on(page, tmp_path):
    bad = tmp_path / "sketch.png"
    bad.write_text("this is not a picture")
    page.locator("#sketch-file input[type=file]").set_input_files(str(bad))
    page.wait_for_selector("#sketch-file a", timeout=10_000)
    assert generate(page) is None
    status = page.locator("#status").first.inner_text()
    assert "sketch" in status and "is not a readable image" in status and "Traceback" not in status
    page.locator("#sketch-file button[aria-label='Clear']").first.click()
    assert generate(page) is not None  # still serving
