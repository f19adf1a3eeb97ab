"""``mcdm serve``: a Gradio page over one loaded Composer, built from the composition and its plugins.

Each modality gets the input component its plugin's ``Modality.input_spec`` declares, its on/off switch, weight,
time window and baseline; the global controls are the sampler's and the composition methods'. A click saves the
inputs as files (``mcdm.serve.inputs``), samples with live progress, and offers the images, a PNG and the
bundle that reproduces them (``mcdm.serve.request``). Bad input is a message in the page; the server goes on.
"""

import atexit
import itertools
import os
import queue
import shutil
import tempfile
import threading
import traceback
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from mcdm.combine import Baseline
from mcdm.compose import Composer, to_pil
from mcdm.config import CompositionConfig
from mcdm.errors import ConditionError, ConfigError, MCDMError
from mcdm.imageio import grid, save_png_atomic
from mcdm.modality import InputKind, InputSpec
from mcdm.schedule import SCHEDULERS, make_scheduler
from mcdm.serve import inputs as page_inputs
from mcdm.serve.examples import Example, held_out_examples
from mcdm.serve.request import RESULT_FILE, Request, composition_yaml, write_bundle

MAX_STEPS = 100
MAX_IMAGES = 8
MAX_UPLOAD = "4mb"
CONCURRENCY = 1  # generations at a time: they share the CPU cores and one Composer
QUEUE_SIZE = 16  # waiting requests beyond this are refused
KEPT_REQUESTS = 32  # request folders kept on disk for downloads; older ones are removed
PREVIEWS = 5  # x0 estimates shown per run (each costs one extra network evaluation for one image)
CANVAS = 256  # drawing canvases, in pixels: drawings are resized to the model's size by the modality
DISPLAY = 128  # gallery images are enlarged (nearest) to about this size; the PNG keeps the model's size
WEIGHT_RANGE = 3.0


@dataclass
class Controls:
    """One modality's components."""

    name: str
    spec: InputSpec | None
    on: Any
    value: Any | None  # canvas, painter, text box or choice list
    upload: Any | None
    weight: Any
    start: Any
    end: Any
    baseline: Any


class Server:
    """The page's state: the Composer, its composition config, and the request folders."""

    def __init__(self, composer: Composer, config: CompositionConfig, root: Path, workdir: Path):
        self.composer, self.config, self.root, self.workdir = composer, config, root, workdir
        self.specs = {name: getattr(m, "input_spec", None) for name, m in composer.modalities.items()}
        for name, spec in self.specs.items():
            _check_spec(name, spec)
        self.examples = held_out_examples(list(composer.modalities), workdir / "examples", composer.image_size)
        self._folders: deque[Path] = deque()

    # --- one request ------------------------------------------------------------------------------

    def request(self, data: dict, controls: list[Controls], globals_: dict[str, Any]) -> Request:
        """Validate the page's values and save the inputs; raises MCDMError with a readable message."""
        folder = self._new_folder()
        conditions, files, settings = {}, set(), {}
        for c in controls:
            if not data[c.on]:
                continue
            conditions[c.name], is_file = self._condition(c, data, folder)
            if is_file:
                files.add(c.name)
            settings[c.name] = {"weight": _number(c.name, "weight", data[c.weight]),
                                "start": _number(c.name, "window start", data[c.start]),
                                "end": _number(c.name, "window end", data[c.end]),
                                "baseline": data[c.baseline]}
        steps = _whole(data[globals_["steps"]], "steps", 1, MAX_STEPS)
        request = Request(
            folder=folder, conditions=conditions, files=frozenset(files), settings=settings,
            scheduler=data[globals_["scheduler"]], steps=steps, seed=_whole(data[globals_["seed"]], "seed", 0, 2**63 - 1),
            num_images=_whole(data[globals_["num_images"]], "number of images", 1, MAX_IMAGES),
            corrector_steps=_whole(data[globals_["corrector_steps"]], "corrector steps", 0, 20),
            corrector_size=_number("corrector", "step size", data[globals_["corrector_size"]]),
        )
        self.composer.request_settings(request.settings, given=request.conditions)  # refuse bad settings now
        return request

    def _condition(self, c: Controls, data: dict, folder: Path) -> tuple[str, bool]:
        kind = c.spec.kind if c.spec else None
        if c.upload is not None:
            uploaded = page_inputs.save_upload(c.name, data[c.upload], folder)
            if uploaded:
                return uploaded, True
        if kind is InputKind.TEXT:
            return page_inputs.caption(c.name, data[c.value]), False
        if kind is InputKind.CHOICE:
            return page_inputs.choice(c.name, c.spec, data[c.value]), False
        composite = (data[c.value] or {}).get("composite") if c.value is not None else None
        if kind is InputKind.IMAGE:
            saved = page_inputs.save_drawing(c.name, composite, folder)
        elif kind is InputKind.LABEL_MAP:
            saved = page_inputs.save_label_map(c.name, c.spec, composite, folder)
        else:
            saved = None
        if saved is None:
            what = {InputKind.IMAGE: "the canvas is empty: draw or upload",
                    InputKind.LABEL_MAP: "nothing is painted: paint some labels or upload a label map"}
            raise ConditionError(f"{c.name}: {what.get(kind, 'no file given: upload one')}, or switch {c.name} off")
        return saved, True

    def generate(self, request: Request, on_step: Callable[[int, Image.Image | None], None]) -> list[Image.Image]:
        """Sample the request; ``on_step(i, x0_estimate_or_None)`` after every step; writes faces.png and the bundle."""
        raw = request.raw_conditions()
        callback = self._progress(request, raw, on_step)
        images = self.composer.generate(raw, progress=False, callback=callback, **request.generate_kwargs())
        save_png_atomic(grid(images), request.folder / RESULT_FILE)
        merged = self.composer.request_settings(request.settings)
        write_bundle(request, composition_yaml(request, self.config, merged, self.root))
        return images

    def _progress(self, request: Request, raw: dict, on_step):
        """A sampling callback that reports each step and, ``PREVIEWS`` times a run, the first image's x0 estimate.

        The estimate is Tweedie's x0 = (x_t - sqrt(1 - abar) eps*) / sqrt(abar) with the composed eps* of a
        one-image predictor for the same request; it reads the sampler's state and never changes it.
        """
        predictor = self.composer.predictor(raw, num_images=1, settings=request.settings)
        scheduler = make_scheduler(request.scheduler, self.composer.schedule_config)
        scheduler.set_timesteps(request.steps)
        timesteps = scheduler.timesteps
        sigma_space = float(scheduler.init_noise_sigma) != 1.0  # Euler keeps x_t / sqrt(abar)
        every = max(1, request.steps // PREVIEWS)

        def callback(i: int, t: torch.Tensor, x: torch.Tensor) -> None:
            if i + 1 >= len(timesteps) or (i + 1) % every:
                on_step(i, None)
                return
            if sigma_space:
                abar = 1.0 / (1.0 + float(scheduler.sigmas[i + 1]) ** 2)
            else:
                abar = float(scheduler.alphas_cumprod[int(timesteps[i + 1])])
            x_t = x[:1] * abar**0.5 if sigma_space else x[:1]
            eps = predictor(x_t, timesteps[i + 1]).to(x_t.dtype)
            x0 = (x_t - (1.0 - abar) ** 0.5 * eps) / abar**0.5
            on_step(i, _enlarged(to_pil(x0.float().clamp(-1, 1).cpu())[0]))

        return callback

    def _new_folder(self) -> Path:
        folder = self.workdir / "requests" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        self._folders.append(folder)
        while len(self._folders) > KEPT_REQUESTS:
            shutil.rmtree(self._folders.popleft(), ignore_errors=True)
        return folder


def _check_spec(name: str, spec: InputSpec | None) -> None:
    if spec is not None and not isinstance(spec, InputSpec):
        raise ConfigError(f"modality {name!r}: input_spec must be an mcdm.modality.InputSpec, got {type(spec).__name__}")
    if spec is not None and spec.kind is InputKind.LABEL_MAP:
        if any(label.color == page_inputs.UNKNOWN_RGB for label in spec.labels):
            raise ConfigError(f"modality {name!r}: white is the painter's unknown colour; no label may use it")
        if max(label.id for label in spec.labels) > 255 or not 0 <= spec.unknown <= 255:
            raise ConfigError(f"modality {name!r}: the painter writes 8-bit id maps; label ids must be 0..255")


def _number(name: str, what: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {what} must be a number, got {value!r}") from None
    if not np.isfinite(number):
        raise ConfigError(f"{name}: {what} must be finite, got {number}")
    return number


def _whole(value: Any, what: str, low: int, high: int) -> int:
    number = _number("request", what, value)
    if number != int(number) or not low <= number <= high:
        raise ConfigError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return int(number)


def _enlarged(image: Image.Image) -> Image.Image:
    scale = max(1, DISPLAY // image.width)
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


def _message(exc: BaseException) -> str:
    if isinstance(exc, MCDMError):
        return f"**Error:** {exc}"
    traceback.print_exception(exc)  # not the person's fault: the details go to the server's log
    return f"**Error:** generation failed ({type(exc).__name__}: {exc}); the server is still running"


# --- the page ---------------------------------------------------------------------------------------


def build_app(server: Server):
    """The Gradio Blocks of the page."""
    import gradio as gr

    composer = server.composer
    controls: list[Controls] = []
    with gr.Blocks(title=f"mcdm: {server.config.name}", analytics_enabled=False) as app:
        gr.Markdown(f"# mcdm · {server.config.name}\nCompose {', '.join(composer.modalities) or 'the prior'} at "
                    f"sampling time (eps* = eps_u + sum_i w_i (eps_i - b_i)); any subset of the inputs, "
                    f"{composer.image_size}x{composer.image_size} images.")
        with gr.Row():
            with gr.Column(scale=3):
                for name in composer.modalities:
                    controls.append(_modality_controls(gr, server, name))
            with gr.Column(scale=2):
                globals_ = _global_controls(gr, server)
                go = gr.Button("Generate", variant="primary", elem_id="generate")
                status = gr.Markdown("", elem_id="status")
                preview = gr.Image(label="current x0 estimate", type="pil", interactive=False, elem_id="preview",
                                   height=DISPLAY + 40)
                gallery = gr.Gallery(label="results", columns=4, height="auto", elem_id="gallery",
                                     object_fit="contain")
                with gr.Row():
                    png = gr.File(label="PNG (model resolution)", elem_id="png", interactive=False)
                    bundle = gr.File(label="request: composition.yaml + inputs + command", elem_id="bundle",
                                     interactive=False)
                command = gr.Textbox(label="mcdm generate command (run in the unpacked request)",
                                     elem_id="command", interactive=False, lines=3)
                if server.examples:
                    _examples(gr, server, controls)

        inputs = {component for c in controls for component in
                  (c.on, c.value, c.upload, c.weight, c.start, c.end, c.baseline) if component is not None}
        inputs |= set(globals_.values())
        outputs = [status, preview, gallery, png, bundle, command]
        counter = itertools.count(1)

        def run(data: dict):
            number = next(counter)  # every final message names its request, so a person can tell them apart
            try:
                request = server.request(data, controls, globals_)
            except Exception as exc:  # bad input: a message, never a traceback
                yield {status: f"{_message(exc)} (request {number})"}
                return
            events: queue.Queue = queue.Queue()

            def work():
                try:
                    events.put(("done", server.generate(request, lambda i, x0: events.put(("step", i, x0)))))
                except BaseException as exc:  # reported in the page; the worker thread ends, the server goes on
                    events.put(("error", exc))

            threading.Thread(target=work, daemon=True).start()
            yield {status: f"step 0/{request.steps}", preview: None}
            while True:
                kind, *rest = events.get()
                if kind == "step":
                    i, x0 = rest
                    update = {status: f"step {i + 1}/{request.steps}"}
                    if x0 is not None:
                        update[preview] = x0
                    yield update
                elif kind == "error":
                    yield {status: f"{_message(rest[0])} (request {number})"}
                    return
                else:
                    images = rest[0]
                    yield {status: f"done: {len(images)} image(s), seed {request.seed} (request {number})",
                           gallery: [_enlarged(image) for image in images],
                           png: str(request.folder / RESULT_FILE), bundle: str(request.folder / "request.zip"),
                           command: f"unzip request.zip -d request && cd request\n{request.command()}"}
                    return

        go.click(run, inputs=inputs, outputs=outputs, concurrency_limit=CONCURRENCY)
    return app


def _modality_controls(gr, server: Server, name: str) -> Controls:
    spec = server.specs[name]
    setting = server.composer.defaults.settings[name]
    summary = server.composer.plugins.modalities[name].summary  # as registered, what `mcdm plugins` prints
    value = upload = None
    with gr.Group(elem_id=f"modality-{name}"):
        on = gr.Checkbox(value=True, label=f"{name}: {summary}" if summary else name, elem_id=f"{name}-on")
        kind = spec.kind if spec else None
        if kind is InputKind.IMAGE:
            value = gr.ImageEditor(
                label=f"{name}: draw (black on white), erase, or upload an image to draw on", image_mode="RGB",
                type="numpy", format="png", canvas_size=(CANVAS, CANVAS), sources=("upload",), layers=False,
                brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=4),
                eraser=gr.Eraser(default_size=8), elem_id=f"{name}-canvas", transforms=())
        elif kind is InputKind.LABEL_MAP:
            colours = ["#ffffff", *(_hex(label.color) for label in spec.labels)]
            value = gr.ImageEditor(
                label=f"{name}: paint labels (white: unknown)", image_mode="RGB", type="numpy", format="png",
                canvas_size=(CANVAS, CANVAS), sources=("upload",), layers=False, transforms=(),
                brush=gr.Brush(colors=colours, default_color=colours[min(2, len(colours) - 1)], color_mode="fixed",
                               default_size=10),
                eraser=gr.Eraser(default_size=10), elem_id=f"{name}-canvas")
            gr.HTML(_legend(spec), elem_id=f"{name}-legend")
        elif kind is InputKind.TEXT:
            value = gr.Textbox(label=f"{name}", lines=2, elem_id=f"{name}-text",
                               value=spec.examples[0] if spec.examples else "")
            if spec.examples:
                gr.Examples([[example] for example in spec.examples], inputs=[value], label=f"example {name}s")
        elif kind is InputKind.CHOICE:
            value = gr.Dropdown(list(spec.choices), value=spec.choices[0], label=name, elem_id=f"{name}-choice")
        if kind in (None, InputKind.IMAGE, InputKind.LABEL_MAP):
            hint = "used instead of the canvas" if kind else f"read by the {name} plugin"
            upload = gr.File(label=f"{name}: or a file ({hint})", type="filepath", elem_id=f"{name}-file",
                             height=80)
        with gr.Row():
            weight = gr.Slider(-WEIGHT_RANGE, WEIGHT_RANGE, value=setting.weight, step=0.05,
                               label="weight (negative: NOT)", elem_id=f"{name}-weight")
            baseline = gr.Radio([b.value for b in Baseline], value=Baseline(setting.baseline).value,
                                label="baseline", elem_id=f"{name}-baseline")
        with gr.Row():
            start = gr.Slider(0, 1, value=setting.start, step=0.05, label="window start (t/T)",
                              elem_id=f"{name}-start")
            end = gr.Slider(0, 1, value=setting.end, step=0.05, label="window end (t/T)", elem_id=f"{name}-end")
    return Controls(name, spec, on, value, upload, weight, start, end, baseline)


def _global_controls(gr, server: Server) -> dict[str, Any]:
    defaults = server.composer.defaults
    with gr.Group():
        with gr.Row():
            scheduler = gr.Dropdown(list(SCHEDULERS), value=defaults.scheduler, label="scheduler",
                                    elem_id="scheduler")
            steps = gr.Slider(1, MAX_STEPS, value=min(defaults.steps, MAX_STEPS), step=1, label="steps",
                              elem_id="steps")
        with gr.Row():
            seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="seed")
            num_images = gr.Slider(1, MAX_IMAGES, value=4, step=1, label="images", elem_id="num-images")
        # the composition methods generate_tensor offers per request
        with gr.Row():
            corrector_steps = gr.Slider(0, 20, value=defaults.corrector_steps, step=1,
                                        label="Langevin corrector steps (ULA) per sampler step",
                                        elem_id="corrector-steps")
            corrector_size = gr.Number(defaults.corrector_size, minimum=1e-6,
                                       label="corrector step size (fraction of sigma_t^2)", elem_id="corrector-size")
    return {"scheduler": scheduler, "steps": steps, "seed": seed, "num_images": num_images,
            "corrector_steps": corrector_steps, "corrector_size": corrector_size}


def _examples(gr, server: Server, controls: list[Controls]) -> None:
    """Held-out faces one click away: a click loads the face's inputs into every control."""
    faces = gr.Gallery([(str(e.reference), e.name) for e in server.examples], label="examples: held-out faces "
                       "(click one to load its inputs)", columns=8, height="auto", allow_preview=False,
                       elem_id="examples", object_fit="contain")
    targets = [component for c in controls for component in (c.on, c.value, c.upload) if component is not None]

    def load(evt: gr.SelectData):
        example = server.examples[evt.index]
        values = []
        for c in controls:
            given = c.name in example.inputs
            values.append(given)
            if c.value is not None:
                values.append(_example_value(c.spec, example.inputs[c.name]) if given else None)
            if c.upload is not None:
                values.append(example.inputs[c.name] if given and c.value is None else None)
        return values

    faces.select(load, inputs=None, outputs=targets)


def _example_value(spec: InputSpec, value: str):
    """An example input as the page shows it: drawings black on white, label maps in the palette's colours."""
    if spec.kind in (InputKind.TEXT, InputKind.CHOICE):
        return value
    array = np.asarray(Image.open(value))
    if spec.kind is InputKind.LABEL_MAP:
        colours = {label.id: label.color for label in spec.labels} | {spec.unknown: page_inputs.UNKNOWN_RGB}
        rgb = np.zeros((*array.shape[:2], 3), np.uint8)
        for label_id, colour in colours.items():
            rgb[array == label_id] = colour
    else:
        grey = array if array.ndim == 2 else array[..., :3].mean(axis=-1)
        rgb = np.repeat((255 - grey if grey.mean() < 128 else grey).astype(np.uint8)[..., None], 3, axis=-1)
    image = Image.fromarray(rgb).resize((CANVAS, CANVAS), Image.NEAREST)  # the canvas's size: strokes on top align
    return {"background": image, "layers": [], "composite": image}


def _hex(color: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def _legend(spec: InputSpec) -> str:
    swatch = ('<span style="display:inline-flex;align-items:center;margin:2px 8px 2px 0">'
              '<span style="width:14px;height:14px;background:{};border:1px solid #888;margin-right:4px"></span>'
              '{}</span>')
    items = [swatch.format("#ffffff", "unknown")] + [swatch.format(_hex(l.color), l.name) for l in spec.labels]
    return f'<div style="font-size:12px">{"".join(items)}</div>'


def serve(model: str, host: str = "127.0.0.1", port: int = 7860, *, device: str = "cpu",
          quiet: bool = False, block: bool = True):
    """Load the composition once and serve the page; returns the running app when ``block`` is False."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no telemetry, no version check: nothing leaves the machine
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise MCDMError("mcdm serve needs Gradio: pip install 'mcdm[serve]'") from None
    from mcdm.pretrained import open_composition

    folder, config = open_composition(model)  # checksums verified, what it extends merged in
    composer = Composer.from_config(config, root=folder, device=device)
    workdir = Path(tempfile.mkdtemp(prefix="mcdm-serve-"))
    atexit.register(shutil.rmtree, workdir, True)
    app = build_app(Server(composer, config, folder, workdir))
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    app.launch(server_name=host, server_port=port, max_file_size=MAX_UPLOAD, quiet=quiet,
               prevent_thread_lock=not block, footer_links=[], allowed_paths=[str(workdir)])
    return app
