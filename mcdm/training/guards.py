"""What every trainer checks before and during a run: a writable run folder, and finite losses and gradients."""

from __future__ import annotations

import os
from pathlib import Path

from mcdm.errors import ConfigError, TrainingError


def check_writable_run_folder(out: Path) -> None:
    """A run folder that can be written, checked (by writing to it) before anything is built."""
    probe = out / f".write-probe-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"out={str(out)!r} cannot be written: {exc.strerror or exc}") from exc


class FiniteWatch:
    """Notices the first step whose loss (or gradient) is not finite, without a device sync every step.

    ``observe`` records on the device; ``check`` (on logging and checkpoint steps, which sync anyway) raises a
    TrainingError naming that step, before any diverged weights reach a checkpoint.
    """

    NONE = 2**62

    def __init__(self, accelerator, *, check_gradients: bool):
        import torch

        self.accelerator, self.check_gradients = accelerator, check_gradients
        self.first_bad = torch.full((1,), self.NONE, dtype=torch.long, device=accelerator.device)

    def observe(self, step: int, loss, model) -> None:
        import torch

        finite = torch.isfinite(loss.detach())
        if self.check_gradients:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            if grads:
                finite = finite & torch.isfinite(torch.stack(torch._foreach_norm(grads))).all()
        step_now = torch.full_like(self.first_bad, step)
        self.first_bad = torch.where(finite, self.first_bad, torch.minimum(self.first_bad, step_now))

    def check(self, checkpoints: Path, lr: float) -> None:
        first = int(self.accelerator.gather(self.first_bad).min().item())  # every rank stops at the same step
        if first == self.NONE:
            return
        kept = sorted(checkpoints.glob("step-*"))
        last = f"the last good checkpoint is {str(kept[-1])!r}" if kept else "no checkpoint was written"
        raise TrainingError(f"training stopped: the loss or a gradient was not finite at step {first} (lr {lr:.3g}); "
                            f"{last}, and --resume continues from it")
