"""How a vector is cut into contiguous pieces: the ring's chunks, the parameter server's shards."""

from __future__ import annotations


def chunk_bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) ranges covering 0..length in `parts` pieces, the first
    length mod parts one element longer; pieces are empty when length < parts."""
    base, extra = divmod(length, parts)
    bounds, lo = [], 0
    for i in range(parts):
        hi = lo + base + (i < extra)
        bounds.append((lo, hi))
        lo = hi
    return bounds
