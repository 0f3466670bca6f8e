"""Keep big buffers out of glibc's heap, so memory that is freed goes back to the system.

glibc serves allocations above ``M_MMAP_THRESHOLD`` with their own ``mmap`` (returned on ``free``) and smaller
ones from the heap. It raises that threshold every time a large mmapped buffer is freed — up to 32 MB — after
which the decoder's frame batches and the soundtrack's blocks (a few MB each, made and freed thousands of times)
land in the heap, which fragments and is rarely returned: a dub's memory then grows with the video's length
even though it never holds more than a few blocks (measured on a 10 min video: 1.81 GB peak, 1.30 GB with the
threshold fixed). Fixing the threshold at 1 MiB keeps every such buffer mmapped. Elsewhere (macOS, musl) there
is nothing to do.
"""
from __future__ import annotations

import ctypes
import functools

M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>
THRESHOLD = 1 << 20


@functools.cache
def keep_large_buffers_out_of_the_heap() -> bool:
    """Fix glibc's mmap threshold at ``THRESHOLD`` (once per process); False where there is no glibc."""
    try:
        # The running process's own symbols: glibc's mallopt is among them, and no ``ldconfig`` is spawned to
        # find a library already loaded (``ctypes.util.find_library`` runs it: 0.1 s per process).
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))
