"""Every call of the binding against a real agent: exact answers."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import time

import pytest

import qtx
from conftest import connect, stats_settled, wait_until



def test_library_version_is_the_major_written_for():
    assert qtx._lib.lib().version[0] == qtx._lib.WRITTEN_FOR[0]
    assert qtx.library_version() == "%d.%d.%d" % qtx._lib.lib().version
    assert qtx._lib.lib().qtx_version_string().decode() == qtx.library_version()


def test_a_library_of_another_major_is_refused(monkeypatch):
    monkeypatch.setattr(qtx._lib, "WRITTEN_FOR", (qtx._lib.WRITTEN_FOR[0] + 1, 0, 0))
    with pytest.raises(ImportError, match="was written for major 1"):
        qtx._lib.Library(qtx.library_path())


def test_state_identity_and_simple_requests(agent, agent_proc):
    assert agent.state == "ready"
    ident = agent.identity()
    assert ident["version"] == "0.2.0"
    assert len(ident["instance_id"]) == 32
    assert agent.ping() == b""
    assert agent.ping(b"\x00payload\xff") == b"\x00payload\xff"
    assert agent.hostname() == socket.gethostname()
    info = agent.info()
    assert info["hostname"] == socket.gethostname()
    assert info["kernel_release"] == os.uname().release
    assert info["arch"] == os.uname().machine
    now = time.time()
    assert abs(agent.time() - now) < 5
    # The generic form gives the whole Response.
    assert agent.call({"hostname_get": {}}) == {"hostname_get": {"hostname": socket.gethostname()}}
    assert agent.call({"ping": {"payload": base64.b64encode(b"x").decode()}}, timeout=5.0) == {
        "ping": {"payload": base64.b64encode(b"x").decode()}}


def test_file_requests(agent, agent_proc):
    d = agent_proc.files
    agent.mkdir(d + "/a/b", parents=True, mode=0o750)
    st = agent.stat(d + "/a/b")
    assert st["type"] == "FILE_TYPE_DIRECTORY"
    assert st["mode"] == 0o750
    with open(d + "/a/f", "wb") as f:
        f.write(b"0123456789")
    st = agent.stat(d + "/a/f")
    assert (st["type"], int(st["size"])) == ("FILE_TYPE_REGULAR", 10)
    assert [e["path"] for e in agent.listdir(d + "/a")] == ["b", "f"]
    assert agent.file_sha256(d + "/a/f") == hashlib.sha256(b"0123456789").hexdigest()
    agent.remove(d + "/a", recursive=True)
    assert not os.path.exists(d + "/a")


def test_process_network_telemetry_config(agent):
    procs = agent.processes()
    assert any(int(p["pid"]) == os.getpid() for p in procs)
    names = [i["name"] for i in agent.network()]
    assert "lo" in names
    assert agent.telemetry_config(interval=0.2)["interval_ms"] == 200


def test_set_hostname_in_the_agents_own_uts_namespace(manager, start_agent):
    proc = start_agent(own_uts_namespace=True)
    agent = connect(manager, proc)
    agent.set_hostname("qtx-python-test")
    assert agent.hostname() == "qtx-python-test"
    assert socket.gethostname() != "qtx-python-test"


def test_exec_result_output_and_stdin(agent, agent_proc):
    r = agent.exec(["/bin/sh", "-c", "cat; echo err >&2; exit 3"], stdin=b"in\n", timeout=20)
    assert (r.exit_code, r.signal, r.stdout, r.stderr, r.ok) == (3, None, b"in\n", b"err\n", False)
    assert r.pid > 0 and not r.timed_out and not r.truncated
    r = agent.exec(["/bin/sh", "-c", 'pwd; echo "$A"'], env={"A": "from env", "PATH": "/bin:/usr/bin"},
                   cwd=agent_proc.files)
    assert r.stdout == (agent_proc.files + "\nfrom env\n").encode()
    r = agent.exec(["/bin/sh", "-c", "echo o; echo e >&2"], merge_stderr=True)
    assert (r.stdout, r.stderr) == (b"o\ne\n", b"")
    r = agent.exec(["/bin/sh", "-c", "kill -9 $$"])
    assert (r.exit_code, r.signal) == (None, 9)


def test_exec_stdin_from_a_file_object(agent):
    data = os.urandom(3 << 20)
    r = agent.exec(["/usr/bin/sha256sum"], stdin=io.BytesIO(data), timeout=60)
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_streamed_exec_chunks_readers_and_pipe(agent):
    with agent.start(["/bin/sh", "-c", "echo out; echo err >&2; echo out2"]) as p:
        chunks = list(p.chunks())
        result = p.wait()
    assert b"".join(c for s, c in chunks if s == qtx.STDOUT) == b"out\nout2\n"
    assert b"".join(c for s, c in chunks if s == qtx.STDERR) == b"err\n"
    assert result.exit_code == 0 and result.stdout == b""

    with agent.start(["/bin/cat"], stdin=qtx.PIPE) as p:
        p.write(b"hello ")
        p.write(b"world")
        p.close_stdin()
        assert p.stdout.read() == b"hello world"
        assert p.stderr.read() == b""
        assert p.wait().exit_code == 0

    data = os.urandom(1 << 20)
    with agent.start(["/bin/cat"], stdin=io.BytesIO(data), output_window=65536) as p:
        assert p.stdout.read() == data  # 16 windows: the reader's pace holds the command back
        assert p.wait().exit_code == 0


def test_upload_download_paths_with_progress(agent, agent_proc, tmp_path):
    data = os.urandom((2 << 20) + 123)
    src = tmp_path / "src"
    src.write_bytes(data)
    seen = []
    r = agent.upload(src, agent_proc.files + "/up", mode=0o600, progress=lambda n, total: seen.append((n, total)))
    assert (r.bytes, r.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert seen and seen[-1][0] == len(data)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    assert os.stat(agent_proc.files + "/up").st_mode & 0o777 == 0o600
    back = tmp_path / "back"
    r = agent.download(agent_proc.files + "/up", back)
    assert r.sha256 == hashlib.sha256(data).hexdigest()
    assert back.read_bytes() == data


def test_upload_download_file_objects_and_handles(agent, agent_proc):
    data = os.urandom((1 << 20) + 7)
    seen = []
    r = agent.upload(io.BytesIO(data), agent_proc.files + "/obj", progress=lambda n, t: seen.append((n, t)))
    assert (r.bytes, r.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert seen[-1] == (len(data), len(data))
    out = io.BytesIO()
    r = agent.download(agent_proc.files + "/obj", out)
    assert out.getvalue() == data and r.bytes == len(data)
    agent.upload(b"small bytes", agent_proc.files + "/b", verify_sha256=False)
    with agent.open_download(agent_proc.files + "/b") as t:
        assert t.read() == b"small bytes"
        assert t.finish().bytes == 11
    # An upload abandoned before finish() leaves nothing behind.
    with agent.open_upload(agent_proc.files + "/never") as t:
        t.write(b"partial")
    assert not os.path.exists(agent_proc.files + "/never")


def test_progress_callback_exception_is_raised_after_the_transfer(agent, agent_proc, tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"x" * 1000)

    def bad(n, total):
        raise RuntimeError("progress failed")
    with pytest.raises(RuntimeError, match="progress failed"):
        agent.upload(src, agent_proc.files + "/p", progress=bad)


def test_telemetry_iterator_latest_and_drops(agent):
    with agent.telemetry() as samples:
        got = [s for _, s in zip(range(3), samples)]
    seqs = [int(s["seq"]) for s in got]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert "memory" in got[0] and "cpu" in got[0]
    assert int(agent.latest_telemetry()["seq"]) >= seqs[-1]
    # A reader that does not read: maxsize 2 keeps the newest two.
    with agent.telemetry(maxsize=2) as slow:
        deadline = time.monotonic() + 20
        while slow.received < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.received >= 5
        received, dropped = slow.received, slow.dropped
        first = int(slow.get()["seq"])
        second = int(slow.get()["seq"])
    assert second == first + 1
    assert dropped >= received - 2 - 1  # a sample may land between the two reads
    with pytest.raises(qtx.DeadlineError):
        agent.telemetry().get(timeout=0.001)


def test_events_include_telemetry(agent):
    with agent.events() as events:
        e = next(iter(events))
    assert "telemetry" in e and int(e["telemetry"]["seq"]) >= 1


def test_stats_after_calls(agent):
    for _ in range(5):
        agent.ping()
    s = stats_settled(agent)
    assert int(s["calls_in_flight"]) == 0
    assert int(s["calls_ended"][0]) >= 5


def test_manager_metrics_and_agents(manager, agent):
    assert manager.agents == [agent]
    text = manager.metrics()
    assert "qtx_agents 1" in text
    assert manager.metrics(openmetrics=True).rstrip().endswith("# EOF")
    agent.close()
    assert manager.agents == []
    assert agent.state == "closed"
    with pytest.raises(qtx.ClosedError):
        agent.ping()


def test_state_and_restart_callbacks(manager, start_agent):
    first = start_agent()
    states, restarts = [], []
    agent = connect(manager, first, on_state=lambda s, cause: states.append(s),
                    on_restarted=lambda new, old: restarts.append((new, old)))
    old_id = agent.identity()["instance_id"]
    assert wait_until(lambda: states and states[-1] == "ready"), states
    first.kill()
    os.unlink(first.socket)
    second = start_agent(socket=first.socket)  # a new agent instance on the same socket
    assert wait_until(lambda: restarts and states[-1] == "ready"), (states, restarts)
    assert agent.identity()["instance_id"] != old_id
    assert restarts == [(agent.identity()["instance_id"], old_id)]
    assert "disconnected" in states and states[-1] == "ready"
    assert agent.callback_errors == 0
    assert second.proc.poll() is None


def test_a_process_dropped_without_close_is_closed(agent):
    import gc
    p = agent.start(["/bin/sleep", "30"])
    del p
    gc.collect()
    s = stats_settled(agent)  # the janitor thread closed it: the command was cancelled
    assert int(s["calls_in_flight"]) == 0
    assert int(s["calls_ended"][3]) == 1
