"""A real two-node Ray cluster on this machine, shared by a test module: `ray start --head` and a second
`ray start --address=...` (one CPU each, a small object store, no dashboard, no usage stats), both started with
--block so that ending their processes (by pid) takes their nodes down."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from tests.cli_run import cli_env

RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
    "RAY_BACKEND_LOG_LEVEL": "error",
}
OBJECT_STORE = str(200 * 1000 * 1000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_cli() -> str:
    return shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")


def _nodes(address: str) -> int:
    """How many live nodes with a CPU the cluster at `address` has (asked in a short-lived driver)."""
    code = "import ray; ray.init(address=%r, logging_level='ERROR'); print(sum(n['Alive'] for n in ray.nodes()))"
    r = subprocess.run(
        [sys.executable, "-c", code % address], capture_output=True, text=True, env=cli_env(**RAY_ENV), timeout=120
    )
    return int(r.stdout.strip() or 0)


@pytest.fixture(scope="module")
def ray_cluster():
    """The cluster's address (127.0.0.1:PORT); the processes that run it are ended after the module."""
    pytest.importorskip("ray")
    pytest.importorskip("lance")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="g2ray", dir="/tmp")  # short: Ray's socket paths live under it
    common = ["--block", "--num-cpus=1", f"--object-store-memory={OBJECT_STORE}", "--disable-usage-stats"]
    env = cli_env(**RAY_ENV)
    out = open(os.path.join(temp, "ray-start.log"), "w")  # noqa: SIM115 (open while the nodes run)
    procs = [
        subprocess.Popen(
            [
                _ray_cli(),
                "start",
                "--head",
                f"--port={port}",
                "--node-ip-address=127.0.0.1",
                "--include-dashboard=false",
                f"--temp-dir={temp}",
                *common,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not _port_open(port):
            assert procs[0].poll() is None and time.monotonic() < deadline, "ray start --head failed"
            time.sleep(0.3)
        procs.append(
            subprocess.Popen(
                [_ray_cli(), "start", f"--address={address}", "--node-ip-address=127.0.0.1", *common],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )
        while _nodes(address) < 2:
            assert procs[1].poll() is None and time.monotonic() < deadline, "the second ray node did not join"
            time.sleep(0.5)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        out.close()
        shutil.rmtree(temp, ignore_errors=True)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
