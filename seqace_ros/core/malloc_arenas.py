"""One glibc malloc arena per process, for long-running nodes whose threads share big buffers.

glibc gives each new thread that allocates its own malloc arena (up to 8 per core) and keeps
the memory freed into an arena for that arena's later use. A node with several threads
that each run inference or hold big buffers (the relocalization node's worker thread
localizes every frame; its loader thread runs a warm-up inference on every new map; rclpy's
executor and the DDS threads hold image messages of several hundred KB) leaves a whole
inference's working set free in each of those arenas. In the soak (``bench/soak.py``: a
full-rate camera switching image sizes, a map swap a minute) the memory the node had in use
stayed flat while the free memory glibc kept for it grew over the first minutes, which a
resident-memory check reads as growth. With a single arena the memory one thread frees
serves the next allocation of any other (the README's soak section has the numbers).

What a map swap frees (the old localizer, the new one's warm-up working set) stays in the
heap as free memory too; :func:`release_free_memory` hands it back to the kernel
(``malloc_trim``), which the node does once after each swap.

The limit must be set before other threads first allocate (an arena, once a thread has it,
stays its arena; importing rclpy already starts two threads): call
:func:`limit_malloc_arenas` before importing rclpy, as the relocalization node's module does.
It takes effect only with glibc; elsewhere it does nothing. A limit the user sets
(``MALLOC_ARENA_MAX`` or ``GLIBC_TUNABLES=glibc.malloc.arena_max=N``) is left as it is.

Single-arena allocation serialises the threads' malloc calls on one lock: small
allocations go through each thread's cache (tcache) first, and the big ones are few per
frame; the soak's frame rate and latency stayed those of the default (README, soak section).
A lower, fixed ``M_MMAP_THRESHOLD`` would also return big buffers at once, but every frame
then maps and faults in its buffers afresh, which more than doubled the CPU time per frame.
"""

from __future__ import annotations

import ctypes
import os
import platform
from enum import Enum

#: ``M_ARENA_MAX`` of glibc's ``<malloc.h>``.
M_ARENA_MAX = -8


class ArenaLimit(Enum):
    """What :func:`limit_malloc_arenas` did."""

    SET = "set"
    USER_SETTING = "left to the user's setting"
    NOT_GLIBC = "not glibc: nothing to do"


def limit_malloc_arenas(max_arenas: int = 1) -> ArenaLimit:
    """Limit glibc's malloc arenas of this process to ``max_arenas`` (see the module docstring).

    Returns:
        What was done: set; left alone because the user set ``MALLOC_ARENA_MAX`` (or the
        ``glibc.malloc.arena_max`` tunable); or nothing, the C library not being glibc.

    Raises:
        ValueError: ``max_arenas`` below 1.
        OSError: glibc refused the setting.
    """
    if max_arenas < 1:
        raise ValueError(f"max_arenas must be at least 1, got {max_arenas}")
    if "MALLOC_ARENA_MAX" in os.environ or "glibc.malloc.arena_max" in os.environ.get(
            "GLIBC_TUNABLES", ""):
        return ArenaLimit.USER_SETTING
    if platform.libc_ver()[0] != "glibc":
        return ArenaLimit.NOT_GLIBC
    libc = ctypes.CDLL(None)
    if libc.mallopt(M_ARENA_MAX, max_arenas) != 1:
        raise OSError(f"glibc mallopt(M_ARENA_MAX, {max_arenas}) failed")
    return ArenaLimit.SET


def release_free_memory() -> bool:
    """Return the free memory glibc holds in its heaps to the kernel (``malloc_trim(0)``: the
    heap's top and whole free pages inside it). Walks the heap under its lock, so call it
    where no other thread is allocating much (the node: after a map swap, between frames).

    Returns:
        Whether glibc released any memory; ``False`` outside glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    return bool(ctypes.CDLL(None).malloc_trim(0))
