"""Every error kind the binding raises, with its class, kind and retryable."""

from __future__ import annotations

import os
import re
import threading

import pytest

import qtx
from qtx import errors
from conftest import SOURCE_DIR, connect, stats_settled



def test_kinds_mirror_the_library_and_its_table():
    L = qtx._lib.lib()
    for code, (name, _) in errors.KINDS.items():
        assert L.qtx_error_kind_name(code).decode() == name
        assert errors.error_class(code).code == code
    # The retryable column of host/src/error_table.h, row by row.
    with open(os.path.join(SOURCE_DIR, "host", "src", "error_table.h")) as f:
        text = f.read()
    rows = re.findall(r'\{ErrorKind::k\w+, "(\w+)", QTX_ERR_\w+, (true|false)\}', text)
    assert len(rows) == len(errors.KINDS)
    assert {name: r == "true" for name, r in rows} == {n: r for n, r in errors.KINDS.values()}


def test_exception_classes():
    assert issubclass(qtx.DeadlineError, TimeoutError)
    assert issubclass(qtx.DisconnectedError, ConnectionError)
    assert issubclass(qtx.InvalidArgumentError, ValueError)
    e = errors.make_error(2, "late", 6, 0)
    assert (type(e), e.kind, e.retryable, e.guest_code, e.errno) == (qtx.DeadlineError, "timeout", True, 6, 0)
    assert str(e) == "timeout: late"


def test_agent_absent(manager, tmp_path):
    agent = manager.add(str(tmp_path / "nobody.sock"))
    with pytest.raises(qtx.DeadlineError) as e:
        agent.wait_ready(timeout=0.3)
    assert e.value.retryable
    with pytest.raises(qtx.DisconnectedError) as e:
        agent.ping(timeout=5)
    assert (e.value.kind, e.value.retryable) == ("disconnected", True)


def test_socket_already_owned(manager, agent_proc):
    manager.add(agent_proc.socket)
    with pytest.raises(qtx.AlreadyExistsError):
        manager.add(agent_proc.socket)


def test_deadline(agent):
    with pytest.raises(qtx.DeadlineError) as e:
        agent.exec(["/bin/sleep", "30"], timeout=0.3)
    assert isinstance(e.value, TimeoutError) and e.value.retryable and e.value.kind == "timeout"
    agent.ping()  # the connection is still fine


def test_denied(manager, start_agent):
    proc = start_agent('[policy]\ndeny = ["exec"]\n')
    agent = connect(manager, proc)
    with pytest.raises(qtx.DeniedError) as e:
        agent.exec(["/bin/true"])
    assert (e.value.kind, e.value.guest_code, e.value.retryable) == ("denied", 2, False)
    assert e.value.message == "denied by the guest's policy: exec"


def test_guest_errors(agent):
    with pytest.raises(qtx.NotFoundError) as e:
        agent.stat("/no/such/file")
    assert (e.value.guest_code, e.value.retryable) == (4, False)
    with pytest.raises(qtx.InvalidArgumentError) as e:
        agent.call({"no_such_request": {}})
    assert e.value.message.startswith("request JSON: ")
    with pytest.raises(ValueError):
        agent.ping(timeout=0)


def test_cancelled_by_a_token_from_another_thread(agent, agent_proc):
    marker = os.path.join(agent_proc.files, "started")
    token = qtx.Cancel()
    fire = threading.Thread(target=lambda: (_wait_for(marker), token.fire()))
    fire.start()
    with pytest.raises(qtx.CancelledError) as e:
        agent.exec(["/bin/sh", "-c", "touch %s; exec sleep 30" % marker], cancel=token, timeout=60)
    fire.join()
    assert (e.value.kind, e.value.retryable) == ("cancelled", False)
    assert token.fired
    with pytest.raises(qtx.CancelledError):  # a fired token ends later calls too
        agent.ping(cancel=token)
    assert int(stats_settled(agent)["calls_in_flight"]) == 0


def test_disconnected_mid_call(agent, agent_proc):
    with agent.start(["/bin/sh", "-c", "echo started; exec sleep 30"], timeout=60) as p:
        assert p.stdout.readline() == b"started\n"
        agent_proc.kill()
        with pytest.raises(qtx.DisconnectedError) as e:
            p.wait()
    assert e.value.retryable


def test_disconnected_mid_exec_call(agent, agent_proc):
    marker = os.path.join(agent_proc.files, "started")
    killer = threading.Thread(target=lambda: (_wait_for(marker), agent_proc.kill()))
    killer.start()
    with pytest.raises(qtx.DisconnectedError):
        agent.exec(["/bin/sh", "-c", "touch %s; exec sleep 30" % marker], timeout=60)
    killer.join()


def test_close_ends_calls_of_other_threads(agent, agent_proc):
    marker = os.path.join(agent_proc.files, "started")
    caught = []

    def run():
        try:
            agent.exec(["/bin/sh", "-c", "touch %s; exec sleep 30" % marker], timeout=60)
        except qtx.QtxError as e:
            caught.append(e)
    t = threading.Thread(target=run)
    t.start()
    _wait_for(marker)
    agent.close()
    t.join()
    assert len(caught) == 1 and isinstance(caught[0], (qtx.CancelledError, qtx.ClosedError))
    with pytest.raises(qtx.ClosedError) as e:
        agent.ping()
    assert e.value.kind == "closed"


def _wait_for(path: str) -> None:
    """Until `path` exists (the command in the guest reached its point)."""
    import time
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        assert time.monotonic() < deadline, path + " never appeared"
        time.sleep(0.005)


def test_closing_from_a_callback_is_refused_not_a_deadlock(agent, agent_proc, tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"x" * 1000)
    with pytest.raises(qtx.LocalError, match="from a callback"):
        agent.upload(src, agent_proc.files + "/p", progress=lambda n, total: agent.close())
    assert agent.ping(b"still open") == b"still open"
