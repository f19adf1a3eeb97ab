"""What every dataset reader shares: indexing, and iteration that can skip bad samples and count them."""

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Literal

from mcdm.data.errors import DataError
from mcdm.data.sample import FaceSample

OnError = Literal["raise", "skip"]


class FaceReader(Sequence[FaceSample], ABC):
    """A face dataset on disk, as a sequence of ``FaceSample``.

    Indexing (``reader[i]``) always raises ``DataError`` for a bad sample: it asked for that one sample.
    Iterating honours ``on_error``: with ``"skip"``, bad samples are left out and their errors collected
    in ``skipped`` (so ``len(reader.skipped)`` is the count, reset by each new pass); with ``"raise"``, the
    first one stops it.
    """

    def __init__(self, on_error: OnError = "raise") -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self.skipped: list[DataError] = []

    @property
    @abstractmethod
    def names(self) -> Sequence[str]:
        """The sample names (file stems), in index order."""

    @abstractmethod
    def load(self, name: str) -> FaceSample:
        """Read one sample by name; ``DataError`` if any of its files is missing or bad."""

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> FaceSample:  # type: ignore[override]
        if not -len(self) <= index < len(self):
            raise IndexError(f"{type(self).__name__} index {index} out of range for {len(self)} samples")
        return self.load(self.names[index])

    def __iter__(self) -> Iterator[FaceSample]:
        self.skipped = []
        for name in self.names:
            try:
                yield self.load(name)
            except DataError as error:
                if self.on_error == "raise":
                    raise
                self.skipped.append(error)
