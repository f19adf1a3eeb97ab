"""Seeds: the range in which every seed gives its own random stream.

torch's CPU generator (Mersenne Twister) keeps only the low 32 bits of ``manual_seed``, so seeds that differ only
above bit 32 (or a negative seed and its two's complement) would silently give the same images. mcdm refuses them
instead of folding them.
"""

from __future__ import annotations

from mcdm.errors import ArgumentError

MAX_SEED = 2**32 - 1


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int in [0, MAX_SEED], or an ArgumentError naming ``name``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ArgumentError(f"{name} must be an integer in [0, 2**32 - 1], got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise ArgumentError(f"{name} must be in [0, 2**32 - 1] = [0, {MAX_SEED}] (the generator keeps 32 bits), "
                          f"got {seed}")
    return seed
