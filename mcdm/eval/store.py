"""The rows an evaluation has finished, kept on disk so that a stopped run resumes where it was.

Every finished row is written under ``OUT/rows/`` as two files named by one key: ``<key>.json`` (the row's
result and definition) and ``<key>.npy`` (its samples, uint8). The key hashes the row's definition (its
``repr``: name, modalities, weights, inputs, settings, sampling options) together with the run's fingerprint
(the composition's and the judges' files, the faces, steps, sampler, seed, Fréchet reference and diversity
draws), so a row is reused only by a run that would have computed the same thing; anything else is a new key.
Samples are read back with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mcdm.atomic import atomic_file
from mcdm.eval.rows import Row


class RowStore:
    """Finished rows of runs with one ``fingerprint`` (a JSON-serialisable mapping), in ``folder``; ``reuse``:
    whether the evaluation takes finished rows from it (else it only writes them)."""

    def __init__(self, folder: Path, fingerprint: dict, *, reuse: bool):
        self.folder = Path(folder)
        self.reuse = reuse
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))  # as it will read back

    def key(self, row: Row) -> str:
        text = json.dumps({"run": self.fingerprint, "row": repr(row)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def load(self, row: Row) -> tuple[dict, np.ndarray] | None:
        """The row's stored result and samples, or None when this run has not finished it."""
        key = self.key(row)
        record, samples = self.folder / f"{key}.json", self.folder / f"{key}.npy"
        if not (record.is_file() and samples.is_file()):
            return None
        stored = json.loads(record.read_text())
        if stored.get("row") != repr(row) or stored.get("run") != self.fingerprint:
            return None  # a hash collision in 96 bits, or a file edited by hand: recompute
        return stored["result"], np.load(samples, allow_pickle=False)

    def save(self, row: Row, result: dict, samples: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        key = self.key(row)
        with atomic_file(self.folder / f"{key}.npy") as tmp:
            with open(tmp, "wb") as f:  # np.save on a name would append .npy to the temporary one
                np.save(f, np.ascontiguousarray(samples, dtype=np.uint8), allow_pickle=False)
        with atomic_file(self.folder / f"{key}.json") as tmp:  # last: its presence marks the row done
            tmp.write_text(json.dumps({"row": repr(row), "run": self.fingerprint, "result": result}, indent=1) + "\n")
