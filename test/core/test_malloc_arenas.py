"""limit_malloc_arenas: one glibc arena for every thread, the user's setting left alone.

Each check runs in a fresh interpreter: the limit only acts before threads first allocate,
and it must not change the test process itself.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from seqace_ros.core.malloc_arenas import ArenaLimit, limit_malloc_arenas

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="malloc arenas are glibc's")

#: Starts threads that allocate, then prints what limit_malloc_arenas returned (or the mode:
#: "off", "node") and the number of arenas (heaps in glibc's malloc_info).
_PROBE = textwrap.dedent("""
    import ctypes, os, sys, tempfile, threading
    from seqace_ros.core.malloc_arenas import limit_malloc_arenas
    if sys.argv[1] == "node":  # the relocalization node's module sets the limit on import
        import seqace_ros.ros.relocalization_node
    outcome = limit_malloc_arenas(1).name if sys.argv[1] == "limit" else sys.argv[1]
    def work():
        blocks = [bytearray(200_000) for _ in range(20)]
        del blocks
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "malloc_info.xml")
        stream = ctypes.c_void_p(libc.fopen(path.encode(), b"w"))
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        text = open(path).read()
    print(outcome, text.count("<heap nr="))
""")


def _probe(mode: str, **env: str) -> tuple[str, int]:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    result = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True,
                            text=True, timeout=120, check=True, env={**environment, **env})
    outcome, heaps = result.stdout.split()
    return outcome, int(heaps)


@glibc_only
def test_threads_get_arenas_of_their_own_by_default() -> None:
    # the control: without the limit, glibc gives new threads arenas of their own
    assert _probe("off")[1] > 1


@glibc_only
def test_limit_puts_every_thread_in_one_arena() -> None:
    assert _probe("limit") == ("SET", 1)


@glibc_only
def test_relocalization_node_module_limits_arenas_before_rclpy_threads() -> None:
    pytest.importorskip("rclpy")
    assert _probe("node") == ("node", 1)


@glibc_only
@pytest.mark.parametrize("env", [{"MALLOC_ARENA_MAX": "3"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.arena_max=3"}])
def test_user_setting_is_left_alone(env: dict[str, str]) -> None:
    outcome, heaps = _probe("limit", **env)
    assert outcome == "USER_SETTING"
    assert heaps > 1


def test_rejects_fewer_than_one_arena() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        limit_malloc_arenas(0)


def test_not_glibc_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert limit_malloc_arenas(1) is ArenaLimit.NOT_GLIBC


_TRIM_PROBE = textwrap.dedent("""
    from seqace_ros.core.malloc_arenas import release_free_memory
    def rss_mb():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
    blocks = [bytearray(2000) for _ in range(100_000)]  # ~200 MB of heap chunks (not mmap)
    kept = blocks[::100]  # one block in a hundred stays: the heap top cannot shrink
    del blocks
    before = rss_mb()
    released = release_free_memory()
    print(released, before, rss_mb(), len(kept))
""")


@glibc_only
def test_release_free_memory_returns_free_heap_pages_to_the_kernel() -> None:
    output = subprocess.run([sys.executable, "-c", _TRIM_PROBE], capture_output=True, text=True,
                            check=True, env={**os.environ, "MALLOC_ARENA_MAX": "1"}).stdout
    released, before_mb, after_mb, _ = output.split()
    assert released == "True"
    assert float(before_mb) - float(after_mb) > 100.0  # most of the ~200 MB freed in the heap
