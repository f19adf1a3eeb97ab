"""The CSV log of a training run (step, loss, lr, seconds), trimmed on resume to the checkpoint's step."""

from __future__ import annotations

import csv
from pathlib import Path

from mcdm.atomic import atomic_file

LOG_FILE = "log.csv"
LOG_HEADER = ["step", "loss", "lr", "seconds"]


class TrainingLog:
    """Appends one row per logged step; ``enabled=False`` (a rank other than the main one) writes nothing."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = path, enabled

    def truncate_after(self, step: int) -> None:
        """On resume: drop rows logged after the checkpoint, which the resumed run will log again.

        Rows that do not parse (a blank line, a row torn by a kill) are dropped too.
        """
        if not self.enabled or not self.path.exists():
            return
        with open(self.path, newline="", errors="replace") as f:
            rows = list(csv.reader(f))
        kept = [LOG_HEADER] + [r for r in rows if len(r) == len(LOG_HEADER) and r[0].isdigit() and int(r[0]) <= step]
        with atomic_file(self.path) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)

    def write(self, step: int, loss: float, lr: float, seconds: float) -> None:
        if not self.enabled:
            return
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(LOG_HEADER)
            writer.writerow([step, f"{loss:.6f}", f"{lr:.3e}", f"{seconds:.1f}"])
