"""The ROS test harness without ROS: loopback environment, waits, subprocess control."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from ros_harness import (
    DISCOVERY_RANGE_ENV,
    DOMAIN_ID_ENV,
    DOMAIN_ID_OVERRIDE_ENV,
    MAX_DOMAIN_ID,
    MIN_DOMAIN_ID,
    HarnessConfigError,
    NodeProcess,
    configure_loopback_dds,
    import_ros_module,
    wait_for,
)


def test_this_run_is_configured_for_loopback_dds():
    """conftest configured the run before any test: subprocesses inherit these values."""
    assert os.environ[DISCOVERY_RANGE_ENV] == "LOCALHOST"
    assert MIN_DOMAIN_ID <= int(os.environ[DOMAIN_ID_ENV]) <= MAX_DOMAIN_ID


def test_configure_loopback_dds_sets_range_and_domain_and_drops_remote_discovery():
    environ = {"ROS_STATIC_PEERS": "192.0.2.7", "ROS_DISCOVERY_SERVER": "192.0.2.8:11811"}
    domain_id = configure_loopback_dds(environ)
    assert environ == {DISCOVERY_RANGE_ENV: "LOCALHOST", DOMAIN_ID_ENV: str(domain_id)}
    assert MIN_DOMAIN_ID <= domain_id <= MAX_DOMAIN_ID


def test_configure_loopback_dds_draws_domains_across_the_range():
    domain_ids = {configure_loopback_dds({}) for _ in range(200)}
    assert len(domain_ids) > 50
    assert min(domain_ids) >= MIN_DOMAIN_ID
    assert max(domain_ids) <= MAX_DOMAIN_ID


def test_configure_loopback_dds_honours_a_valid_override():
    environ = {DOMAIN_ID_OVERRIDE_ENV: "42"}
    assert configure_loopback_dds(environ) == 42
    assert environ[DOMAIN_ID_ENV] == "42"


@pytest.mark.parametrize("override", ["0", "102", "-3", "seven", ""])
def test_configure_loopback_dds_rejects_a_bad_override(override):
    with pytest.raises(HarnessConfigError, match=DOMAIN_ID_OVERRIDE_ENV):
        configure_loopback_dds({DOMAIN_ID_OVERRIDE_ENV: override})


def test_import_ros_module_skips_when_absent_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SEQACE_REQUIRE_ROS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        import_ros_module("seqace_no_such_ros_package.msg")


def test_import_ros_module_fails_when_absent_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run here"):
        import_ros_module("seqace_no_such_ros_package.msg")


def test_wait_for_returns_the_first_truthy_value_and_times_out_with_the_description():
    calls = iter([0, None, "ready"])
    assert wait_for(lambda: next(calls), timeout_s=5.0, description="x", poll_s=0.0) == "ready"
    with pytest.raises(TimeoutError, match="waiting for the impossible"):
        wait_for(lambda: False, timeout_s=0.05, description="the impossible")


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_node_process_passes_params_file_and_environment(tmp_path):
    script = _script(
        tmp_path,
        "echo_args.py",
        """
        import os, sys
        print("ARGS", sys.argv[1:])
        print("ENV", os.environ["ROS_DOMAIN_ID"], os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"],
              os.environ["EXTRA"])
        """,
    )
    parameters = {"rate_hz": 5.0, "frame": "map", "sizes": [1, 2]}
    process = NodeProcess(
        script, tmp_path, parameters, name="echo", ros_args=["-r", "a:=b"], extra_env={"EXTRA": "1"}
    ).start()
    assert process.wait(timeout_s=20.0) == 0
    assert process.params_path is not None
    assert yaml.safe_load(process.params_path.read_text()) == {
        "/**": {"ros__parameters": parameters}
    }
    assert process.command == [
        sys.executable, str(script), "--ros-args", "-r", "a:=b",
        "--params-file", str(process.params_path),
    ]  # fmt: skip
    log = process.log_text()
    assert f"ARGS {process.command[2:]}" in log
    assert f"ENV {os.environ['ROS_DOMAIN_ID']} LOCALHOST 1" in log


def test_node_process_stop_sends_sigint_first(tmp_path):
    script = _script(
        tmp_path,
        "graceful.py",
        """
        import time
        try:
            print("STARTED", flush=True)
            time.sleep(60)
        except KeyboardInterrupt:
            print("GOT SIGINT", flush=True)
        """,
    )
    process = NodeProcess(script, tmp_path, name="graceful").start()
    process.wait_for_log("STARTED", timeout_s=20.0)
    assert process.stop(sigint_timeout_s=20.0) == 0
    assert "GOT SIGINT" in process.log_text()
    assert process.stop() == 0  # stopping again is harmless


def test_node_process_stop_kills_a_child_that_ignores_sigint(tmp_path):
    script = _script(
        tmp_path,
        "stubborn.py",
        """
        import signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("STARTED", flush=True)
        time.sleep(60)
        """,
    )
    process = NodeProcess(script, tmp_path, name="stubborn").start()
    process.wait_for_log("STARTED", timeout_s=20.0)
    assert process.stop(sigint_timeout_s=0.5) == -signal.SIGKILL
    assert "exited with status -9" in process.describe()


def test_node_process_wait_times_out_with_the_output(tmp_path):
    script = _script(
        tmp_path, "slow.py", "import time\nprint('WORKING', flush=True)\ntime.sleep(60)\n"
    )
    process = NodeProcess(script, tmp_path, name="slow").start()
    process.wait_for_log("WORKING", timeout_s=20.0)
    with pytest.raises(TimeoutError, match=r"(?s)slow still running after 0\.2 s.*WORKING"):
        process.wait(timeout_s=0.2)
    assert process.stop(sigint_timeout_s=20.0) == -signal.SIGINT


def test_node_process_reports_a_child_that_dies_before_logging(tmp_path):
    script = _script(tmp_path, "crash.py", "raise SystemExit('bad parameter: rate_hz')\n")
    process = NodeProcess(script, tmp_path, name="crash").start()
    with pytest.raises(RuntimeError, match="bad parameter: rate_hz"):
        process.wait_for_log("READY", timeout_s=20.0)
    assert process.returncode == 1


def test_node_process_rejects_a_missing_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.py"):
        NodeProcess(tmp_path / "missing.py", tmp_path)
