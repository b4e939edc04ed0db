"""Fixtures: a real qtx-agent on a unix socket (it listens, the library
connects), the library from the build tree.

Environment (set by CTest, bindings/python/CMakeLists.txt): QTX_HOST_LIBRARY
(the library), QTX_AGENT_BINARY (qtx-agent), QTX_SOURCE_DIR (the checkout).
Without them the build tree next to this checkout is used."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Iterator, List, Optional

import pytest

SOURCE_DIR = os.environ.get("QTX_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                                                              ".."))
os.environ.setdefault("QTX_HOST_LIBRARY", os.path.join(SOURCE_DIR, "build", "lib", "libqtx-host.so"))
AGENT_BINARY = os.environ.get("QTX_AGENT_BINARY") or os.path.join(SOURCE_DIR, "build", "bin", "qtx-agent")
sys.path.insert(0, os.path.join(SOURCE_DIR, "bindings", "python"))

import qtx  # noqa: E402

# Telemetry every 200 ms: the telemetry tests see samples within a second.
DEFAULT_CONFIG = "[telemetry]\ninterval_ms = 200\n"
CLONE_NEWUTS = 0x04000000


class AgentProcess:
    """qtx-agent listening on `socket` with `config`; killed by stop()."""

    def __init__(self, config: str = DEFAULT_CONFIG, own_uts_namespace: bool = False,
                 socket: Optional[str] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="qtx-py-")
        self.socket = socket or os.path.join(self.dir, "agent.sock")
        self.files = os.path.join(self.dir, "files")  # scratch space for file tests
        os.mkdir(self.files)
        conf = os.path.join(self.dir, "agent.conf")
        with open(conf, "w") as f:
            f.write(config)
        self.log_path = os.path.join(self.dir, "agent.log")
        preexec = None
        if own_uts_namespace:  # hostname_set changes only this namespace's name
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)

            def preexec() -> None:
                if libc.unshare(CLONE_NEWUTS) != 0:
                    os._exit(126)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([AGENT_BINARY, "--config", conf, "--transport", "unix-listen:" + self.socket,
                                          "--log-level", "warn"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=preexec)

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def start_agent() -> Iterator:
    started: List[AgentProcess] = []

    def start(config: str = DEFAULT_CONFIG, own_uts_namespace: bool = False,
              socket: Optional[str] = None) -> AgentProcess:
        p = AgentProcess(config, own_uts_namespace, socket)
        started.append(p)
        return p
    yield start
    for p in started:
        p.stop()


@pytest.fixture
def manager() -> Iterator[qtx.Manager]:
    with qtx.Manager() as m:
        yield m


def connect(manager: qtx.Manager, proc: AgentProcess, **kw: object) -> qtx.Agent:
    agent = manager.add(proc.socket, **kw)
    try:
        agent.wait_ready(timeout=20)
    except qtx.QtxError as e:
        raise AssertionError("%s\nagent log:\n%s" % (e, proc.log()))
    return agent


@pytest.fixture
def agent_proc(start_agent) -> AgentProcess:
    return start_agent()


@pytest.fixture
def agent(manager: qtx.Manager, agent_proc: AgentProcess) -> qtx.Agent:
    return connect(manager, agent_proc)


def has(name: str) -> bool:
    """Whether the loaded library has C function `name` (0.2 additions)."""
    return qtx._lib.lib().has(name)


def stats_settled(agent: qtx.Agent) -> Optional[dict]:
    """The agent's stats once calls_in_flight is back to 0 (calls end on
    the I/O thread just after their caller returns): waits at most 10 s."""
    import time
    deadline = time.monotonic() + 10
    while True:
        s = agent.stats()
        if int(s.get("calls_in_flight", 0)) == 0 or time.monotonic() > deadline:
            return s
        time.sleep(0.01)


def wait_until(predicate, timeout: float = 30.0) -> bool:
    """Polls `predicate` until true (what the I/O thread does next is not
    otherwise observable from here); False after `timeout` seconds."""
    import time
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
