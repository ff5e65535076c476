"""The demo's nodes as child processes: parameters file in, log file out, always stopped.

Each child runs ``python -m <module> --ros-args --params-file FILE [more ros args]`` with this
process's environment (so its ``ROS_DOMAIN_ID`` and loopback discovery range), its output in
``<log_dir>/<name>.log``. :meth:`ChildNode.stop` (SIGINT, then SIGKILL) is safe to call at any
time and again; use the object as a context manager so that an error or Ctrl-C never leaves a
node running. On Linux the kernel also sends a child SIGTERM when the demo process dies without
cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from seqace_ros.core.atomic_io import atomic_write_text
from seqace_ros.core.errors import SeqaceError

_PR_SET_PDEATHSIG = 1
#: Log lines of a child worth echoing to the demo's console (rclpy logger lines).
_ECHO_LEVELS = ("[INFO]", "[WARN]", "[ERROR]", "[FATAL]")


def _terminate_with_parent() -> None:
    """In the child before exec: ask Linux for SIGTERM when the parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildNodeError(SeqaceError, RuntimeError):
    """A child node exited, failed or did not get ready in time (the message has its log tail)."""


class ChildNode:
    """One ROS 2 node entry point run as a child process."""

    def __init__(
        self,
        module: str,
        name: str,
        parameters: Mapping[str, Any],
        log_dir: Path,
        ros_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """Describe the child; :meth:`start` launches it.

        Args:
            module: module run with ``python -m`` (``seqace_ros.ros.mapping_node``).
            name: label for its files and messages.
            parameters: ROS parameters of every node in the process.
            log_dir: existing folder for ``<name>.params.yaml`` and ``<name>.log``.
            ros_args: more arguments after ``--ros-args`` (remappings).
            extra_env: environment variables added to this process's.
        """
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        params_path = log_dir / f"{name}.params.yaml"
        atomic_write_text(params_path, yaml.safe_dump(
            {"/**": {"ros__parameters": dict(parameters)}}, sort_keys=True))
        self.command = [sys.executable, "-m", module, "--ros-args", "--params-file",
                        str(params_path), *ros_args]
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self._popen: subprocess.Popen[bytes] | None = None
        self._echoed_bytes = 0

    def start(self) -> ChildNode:
        """Launch the child. Returns self."""
        with self.log_path.open("wb") as log:
            self._popen = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=self._env,
                                           preexec_fn=_terminate_with_parent)
        return self

    def __enter__(self) -> ChildNode:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """Process id once started, else None."""
        return None if self._popen is None else self._popen.pid

    @property
    def returncode(self) -> int | None:
        """Exit status once exited (negative: ended by that signal), else None."""
        return None if self._popen is None else self._popen.poll()

    def log_text(self) -> str:
        """What the child has written so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 15) -> str:
        """The last lines of the child's output, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def echo_new_lines(self, echo: Callable[[str], None]) -> None:
        """Pass the child's new logger lines (INFO and above) to ``echo``."""
        if not self.log_path.exists():
            return
        with self.log_path.open("rb") as stream:
            stream.seek(self._echoed_bytes)
            data = stream.read()
        complete = data.rfind(b"\n") + 1
        self._echoed_bytes += complete
        for line in data[:complete].decode(errors="replace").splitlines():
            line = line.rsplit("\r", 1)[-1].strip()
            if line.startswith(_ECHO_LEVELS):
                echo(f"  {self.name}: {line}")

    def wait_for_log(self, text: str, timeout_s: float,
                     echo: Callable[[str], None] | None = None) -> None:
        """Block until ``text`` appears in the child's output.

        Raises:
            ChildNodeError: the child exited first, or ``timeout_s`` passed.
        """
        deadline = time.monotonic() + timeout_s
        while text not in self.log_text():
            if echo is not None:
                self.echo_new_lines(echo)
            if self.returncode is not None:
                raise ChildNodeError(self._failure(f"exited with status {self.returncode} "
                                                   f"before logging {text!r}"))
            if time.monotonic() > deadline:
                raise ChildNodeError(
                    self._failure(f"did not log {text!r} within {timeout_s:.0f} s"))
            time.sleep(0.1)
        if echo is not None:
            self.echo_new_lines(echo)

    def wait(self, timeout_s: float, echo: Callable[[str], None] | None = None) -> int:
        """Wait for a child that exits by itself (echoing its log); return its exit status.

        Raises:
            ChildNodeError: still running after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while self.returncode is None:
            if echo is not None:
                self.echo_new_lines(echo)
            if time.monotonic() > deadline:
                raise ChildNodeError(self._failure(f"still running after {timeout_s:.0f} s"))
            time.sleep(0.2)
        if echo is not None:
            self.echo_new_lines(echo)
        return int(self.returncode)  # type: ignore[arg-type]

    def stop(self, sigint_timeout_s: float = 10.0) -> None:
        """SIGINT, then SIGKILL after ``sigint_timeout_s``; nothing when not running."""
        if self._popen is None or self._popen.poll() is not None:
            return
        self._popen.send_signal(signal.SIGINT)
        try:
            self._popen.wait(sigint_timeout_s)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()

    def _failure(self, what: str) -> str:
        return f"{self.name} {what}; log {self.log_path}, last lines:\n{self.tail()}"
