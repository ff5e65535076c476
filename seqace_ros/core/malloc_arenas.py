"""One glibc malloc arena per process, for long-running nodes whose threads share big buffers.

glibc gives each new thread that allocates its own malloc arena (up to 8 per core) and keeps
the memory freed into an arena for that arena's later use. A node with several threads
that each run inference (the relocalization node's worker thread localizes every frame; its
loader thread runs a warm-up inference on every new map; rclpy's executor and the DDS
threads hold image messages of several hundred KB) leaves a whole inference's working set
free in each of those arenas: in the soak (``bench/soak.py``: 30 Hz camera switching
640x480 / 320x240, a map swap a minute) the memory the node used stayed at 120-140 MB
while the memory glibc held for it grew by about 110 MB over the first minutes (resident
about 465 MB), which resident-memory checks read as growth. With a single arena the freed
memory of one thread serves the next allocation of any other: the same soak stays at about
405 MB, flat after the first map swap (bench/results/soak.json and the README's soak
section have the numbers).

The limit must be set before the threads first allocate (an arena, once a thread has it,
stays its arena): call :func:`limit_malloc_arenas` first thing in a node's ``main()``. It
takes effect only with glibc; elsewhere it does nothing. A limit the user sets
(``MALLOC_ARENA_MAX`` or ``GLIBC_TUNABLES=glibc.malloc.arena_max=N``) is left as it is.

Single-arena allocation serialises the threads' malloc calls on one lock: small
allocations go through each thread's cache (tcache) first, and the big ones are a few per
frame, so the node's frame rate does not change measurably (README, soak section).
"""

from __future__ import annotations

import ctypes
import os
import platform
from enum import Enum

#: ``M_ARENA_MAX`` of glibc's ``<malloc.h>``.
M_ARENA_MAX = -8
#: Environment variables through which a user sets the arena limit (left as they are).
USER_SETTINGS = ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")


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
