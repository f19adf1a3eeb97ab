"""Running a function over chunks of sample indices in worker processes, with one progress bar."""

import multiprocessing
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
Chunk = tuple[int, int]  # [start, stop)


def chunks(n: int, chunk_size: int) -> list[Chunk]:
    return [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_chunks(
    fn: Callable[[Chunk], T], work: list[Chunk], workers: int | None, progress: bool, desc: str
) -> Iterator[T]:
    """Yield ``fn(chunk)`` for every chunk, in order, ticking the bar by the chunk's length.

    ``fn`` must be picklable (a module-level function or a ``functools.partial`` of one). ``workers=1``
    runs in this process, which is what tests and debuggers want.
    """
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    total = sum(stop - start for start, stop in work)
    with tqdm(total=total, desc=desc, unit="face", disable=not progress) as bar:
        if workers == 1 or len(work) == 1:
            for chunk in work:
                yield fn(chunk)
                bar.update(chunk[1] - chunk[0])
            return
        with multiprocessing.get_context().Pool(min(workers, len(work))) as pool:
            for chunk, result in zip(work, pool.imap(fn, work)):
                yield result
                bar.update(chunk[1] - chunk[0])
