"""Batch generation: ``mcdm generate --requests FILE.jsonl --out-dir DIR``, on one process or many.

One request a line: ``{"id": "a", "conditions": {...}, "seed": 0, "num_images": 1, "weights": {...},
"settings": {...}, "steps": 25, "scheduler": "dpm++"}`` (``conditions`` and ``seed`` required; ``id`` defaults
to the line number). Under ``accelerate launch`` or ``torchrun`` every process takes every W-th request still to
do, so the work spreads over processes, GPUs and nodes alike. Each image is ``DIR/<id>-<k>.png``, written
atomically; when all of a request's images are written, its record (the request, seed, model checksums, files,
process) goes to ``DIR/.done/<id>.json``, created once (a second writer is an error, so no request is done
twice). A restart skips the requests that have a record. At the end the first process gathers the records, in
the file's order, into ``DIR/manifest.jsonl`` (one line per image).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mcdm.atomic import partial_path, write_text_atomic
from mcdm.checkpoint import folder_digest
from mcdm.errors import ArgumentError, MCDMError
from mcdm.seeds import check_seed
from mcdm.validate import check_count, check_name, check_request, check_weight

DONE = ".done"
MANIFEST = "manifest.jsonl"
REQUEST_KEYS = ("id", "conditions", "seed", "num_images", "weights", "settings", "steps", "scheduler")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class Request:
    """One line of a requests file, checked."""

    id: str
    line: int
    conditions: dict[str, str]
    seed: int
    num_images: int = 1
    weights: dict[str, float] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: int | None = None
    scheduler: str | None = None

    def files(self) -> list[str]:
        return [f"{self.id}-{k:03d}.png" for k in range(self.num_images)]


def read_requests(path: Path, folder: Path, config) -> list[Request]:
    """Every request of ``path``, each checked against the composition (``folder``, ``config``) before any model
    loads; the first bad line is an ArgumentError naming the file and the line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArgumentError(f"--requests {str(path)!r}: cannot read it ({type(exc).__name__}: {exc})") from exc
    requests: list[Request] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            request = _parse(line, number)
            check_request(folder, config, conditions=request.conditions, weights=request.weights, steps=request.steps,
                          scheduler=request.scheduler, num_images=request.num_images)
        except MCDMError as exc:
            raise type(exc)(f"{where}: {exc}") from None
        if request.id in seen:
            raise ArgumentError(f"{where}: id {request.id!r} is already line {seen[request.id]}'s")
        seen[request.id] = number
        requests.append(request)
    if not requests:
        raise ArgumentError(f"--requests {str(path)!r} holds no request (one JSON object a line)")
    return requests


def _parse(line: str, number: int) -> Request:
    try:
        raw = _mapping(json.loads(line), "a request")
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    unknown = sorted(set(raw) - set(REQUEST_KEYS))
    if unknown:
        raise ArgumentError(f"unknown key {unknown[0]!r}; a request takes {', '.join(REQUEST_KEYS)}")
    for key in ("conditions", "seed"):
        if key not in raw:
            raise ArgumentError(f"no {key!r}: every request needs conditions and a seed")
    request_id = raw.get("id", f"{number:06d}")
    if not isinstance(request_id, str) or not _ID.match(request_id):
        raise ArgumentError(f"id must be 1-100 letters, digits, '.', '_' or '-' (a file name), got {request_id!r}")
    conditions = _mapping(raw["conditions"], "conditions")
    for name, value in conditions.items():
        if not isinstance(value, str) or not value:
            raise ArgumentError(f"condition {name!r} must be a non-empty string (a file or a caption), got {value!r}")
    weights = {name: check_weight(name, w) for name, w in _mapping(raw.get("weights", {}), "weights").items()}
    settings = _mapping(raw.get("settings", {}), "settings")
    for name, changes in settings.items():
        _mapping(changes, f"settings of {name!r}")
    steps = raw.get("steps")
    scheduler = raw.get("scheduler")
    return Request(
        id=request_id, line=number, conditions=conditions, seed=check_seed(raw["seed"]),
        num_images=check_count(raw.get("num_images", 1), "num_images"), weights=weights, settings=settings,
        steps=None if steps is None else check_count(steps, "steps"),
        scheduler=None if scheduler is None else check_name(scheduler, "scheduler"),
    )


def _mapping(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ArgumentError(f"{what} must be a JSON object, got {json.dumps(value)[:40]}")
    return value


def model_folders(folder: Path, config) -> dict[str, Path]:
    """The composition's model folders by role: the prior, each modality's, and its VAE's where it names one."""
    roles = {"prior": config.prior, **{name: m.path for name, m in config.modalities.items()},
             **({"vae": config.vae} if config.vae else {})}
    return {role: Path(folder) / rel for role, rel in roles.items()}


def model_checksums(folder: Path, config) -> dict[str, str]:
    """SHA-256 of each model folder of the composition (over its files' paths and contents), by role."""
    return {role: folder_digest(path) for role, path in model_folders(folder, config).items()}


def run_requests(requests: list[Request], out_dir: Path, make_composer, *, checksums: dict[str, str],
                 device: str, echo=print) -> dict:
    """Generate every request not yet done, this process's share of them; returns what this process did.

    ``make_composer(device)`` loads the composition. Every process checks every request's conditions and
    settings against the loaded composition before any is generated, so a bad line stops them all alike.
    """
    from accelerate import Accelerator

    from mcdm.imageio import save_png_atomic

    accelerator = Accelerator(cpu=device == "cpu")
    world, rank = accelerator.num_processes, accelerator.process_index
    if world > 1:
        device = str(accelerator.device)  # the launcher's choice: one device per process
    composer = make_composer(device)
    for request in requests:
        try:
            composer.prepare(request.conditions)
            composer.request_settings(request.settings, given=request.conditions)
        except MCDMError as exc:
            raise type(exc)(f"request {request.id!r} (line {request.line}): {exc}") from None
    done = out_dir / DONE
    done.mkdir(parents=True, exist_ok=True)
    pending = [r for r in requests if not (done / f"{r.id}.json").exists()]
    accelerator.wait_for_everyone()  # every process has read the same records before any is written
    mine = pending[rank::world]
    for request in mine:
        images = composer.generate(request.conditions, num_images=request.num_images, seed=request.seed,
                                   steps=request.steps, scheduler=request.scheduler, weights=request.weights,
                                   settings=request.settings, progress=False)
        for image, name in zip(images, request.files()):
            save_png_atomic(image, out_dir / name)
        record = {"request": _request_fields(request), "seed": request.seed, "files": request.files(),
                  "models": checksums, "process": rank, "world_size": world}
        _create_once(done / f"{request.id}.json", json.dumps(record) + "\n")
        echo(f"process {rank}/{world}: request {request.id!r} -> {', '.join(request.files())}")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_manifest(requests, out_dir)
    return {"process": rank, "world_size": world, "generated": len(mine),
            "skipped": len(requests) - len(pending), "total": len(requests)}


def _request_fields(request: Request) -> dict:
    fields = asdict(request)
    fields.pop("line")
    return fields


def _create_once(path: Path, text: str) -> None:
    """Write ``path`` atomically, refusing if it exists: a request done twice is a bug, not a race to win."""
    tmp = partial_path(path)
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, path)  # fails if the record exists, unlike a rename
    except FileExistsError:
        raise ArgumentError(f"{path} already exists: its request was done twice (is another run writing into "
                            "this --out-dir?)") from None
    finally:
        tmp.unlink(missing_ok=True)


def _write_manifest(requests: list[Request], out_dir: Path) -> None:
    """One line per image of every request with a record, in the requests file's order, written atomically."""
    lines = []
    for request in requests:
        path = out_dir / DONE / f"{request.id}.json"
        if not path.exists():
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        for k, name in enumerate(record["files"]):
            lines.append(json.dumps({"file": name, "image": k, "seed": record["seed"], "request": record["request"],
                                     "models": record["models"], "process": record["process"],
                                     "world_size": record["world_size"]}))
    write_text_atomic(out_dir / MANIFEST, "".join(line + "\n" for line in lines))
