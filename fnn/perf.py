"""Performance switches that are the application's business, not the library's API: here, one
process-wide setting that makes numpy training loops faster on Linux, keeping freed memory.
(The kernel backend has its own switch, :mod:`fnn.ops`.)

numpy allocates a fresh array for every intermediate of every step. glibc's ``malloc`` serves
large blocks (above an adaptive threshold of 128 KiB to 32 MiB) with ``mmap`` and trims freed
memory at the top of its heap, handing pages back to the kernel; the next step page-faults
them in again, each zeroed by the kernel. What that costs depends on the machine, and in a
virtual machine on the host's state, from nothing to a large part of a step: the README's
benchmark table shows runs with and without this setting, and
``python benchmarks/run_all.py --default-malloc`` measures it on yours.
:func:`reuse_freed_memory` asks glibc to serve such blocks from its heap and to keep freed
memory, so every step reuses warm pages. The price: the process keeps its peak memory
reserved until it exits.

It is explicit, never done on ``import fnn``: a process-wide allocator setting is the
application's decision. The environment variables ``MALLOC_MMAP_THRESHOLD_=1073741824
MALLOC_TRIM_THRESHOLD_=2147483647 MALLOC_TOP_PAD_=268435456`` do the same from outside.
"""

from __future__ import annotations

import sys

# mallopt(3) parameter numbers, from glibc's <malloc.h>
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def reuse_freed_memory(max_block_mb: int = 1024, top_pad_mb: int = 256) -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the kernel.

    Blocks up to ``max_block_mb`` (or glibc's maximum, 32 MiB, where it refuses more) come from
    the heap, not ``mmap``; freed memory at the top of the heap is never trimmed, and the heap
    grows ``top_pad_mb`` at a time. Returns True when
    applied (Linux with glibc); False, changing nothing, anywhere else.

    >>> import fnn.perf
    >>> fnn.perf.reuse_freed_memory() in (True, False)
    True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes  # here, not at import: keeps `import fnn` light
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # glibc versions that cap the mmap threshold at 32 MiB (the documented maximum) refuse more
    heap_blocks = (mallopt(_M_MMAP_THRESHOLD, max_block_mb << 20) == 1
                   or mallopt(_M_MMAP_THRESHOLD, min(max_block_mb, 32) << 20) == 1)
    return (heap_blocks and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
            and mallopt(_M_TOP_PAD, top_pad_mb << 20) == 1)


__all__ = ["reuse_freed_memory"]
