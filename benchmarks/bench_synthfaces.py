"""How long synthfaces takes to make: N faces with every modality, rendered into a fresh cache.

    python benchmarks/bench_synthfaces.py --n 50000 --size 32

Times ``load_or_build_cache`` (render image and mask, Canny sketch, attributes, 10 captions, write the
memory-mapped arrays) in a temporary directory, then one process rendering a few hundred samples for the
per-sample cost. Prints the machine it ran on so the figure can be quoted with it.
"""

import argparse
import os
import platform
import tempfile
import time

from mcdm.bench import cpu_model
from mcdm.data.cache import load_or_build_cache
from mcdm.data.parallel import default_workers
from mcdm.data.synthfaces import SynthFaces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="default: all usable cores")
    args = parser.parse_args()
    workers = args.workers or default_workers()
    print(f"machine: {cpu_model()}, {workers} worker(s) of {os.cpu_count()} cores, Python {platform.python_version()}")

    faces = SynthFaces(size=args.size, length=300)
    start = time.perf_counter()
    for _ in faces:
        pass
    per_sample = (time.perf_counter() - start) / len(faces)
    print(f"one process: {per_sample * 1000:.2f} ms per {args.size}px sample with all modalities")

    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        cached = load_or_build_cache(args.size, args.n, 0, "train", cache_dir, workers=workers)
        elapsed = time.perf_counter() - start
        print(
            f"cache of {len(cached)} samples at {args.size}px: {elapsed:.1f} s "
            f"({len(cached) / elapsed:.0f} samples/s, {workers} workers)"
        )


if __name__ == "__main__":
    main()
