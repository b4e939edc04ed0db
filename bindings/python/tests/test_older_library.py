"""A 0.1 library (same major) lacks the 0.2 functions: the binding falls
back to the 0.1 calls where there is one, and says which function is
missing where there is none. Simulated by hiding the 0.2 functions of this
library."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

import qtx

ADDED_IN_02 = ["qtx_cancel_new", "qtx_cancel_fire", "qtx_cancel_fired", "qtx_cancel_free", "qtx_agent_request_json",
               "qtx_agent_request_json_async", "qtx_agent_cancel_call", "qtx_agent_stats_json", "qtx_agent_exec_start",
               "qtx_agent_upload_file", "qtx_agent_download_file", "qtx_agent_upload_start",
               "qtx_agent_download_start"]


@pytest.fixture
def old_library(monkeypatch):
    L = qtx._lib.lib()
    for name in ADDED_IN_02:
        monkeypatch.setattr(L, name, None)
    return L


def test_calls_exec_and_path_transfers_without_the_02_functions(agent, agent_proc, old_library, tmp_path):
    assert agent.ping(b"old") == b"old"
    assert agent.call({"hostname_get": {}})["hostname_get"]["hostname"] == agent.hostname()
    r = agent.exec(["/bin/sh", "-c", "cat; echo e >&2; exit 2"], stdin=io.BytesIO(b"from a file"), timeout=20)
    assert (r.exit_code, r.stdout, r.stderr) == (2, b"from a file", b"e\n")
    with pytest.raises(qtx.DeadlineError):
        agent.exec(["/bin/sleep", "30"], timeout=0.2)
    data = os.urandom(100000)
    (tmp_path / "a").write_bytes(data)
    seen = []
    up = agent.upload(tmp_path / "a", agent_proc.files + "/a", progress=lambda n, t: seen.append(n))
    assert (up.bytes, up.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert seen[-1] == len(data)
    agent.download(agent_proc.files + "/a", tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == data


def test_what_has_no_01_equivalent_names_the_missing_function(agent, old_library):
    with pytest.raises(qtx.UnsupportedError, match="has no qtx_agent_exec_start"):
        agent.start(["/bin/true"])
    with pytest.raises(qtx.UnsupportedError, match="has no qtx_agent_upload_start"):
        agent.upload(b"bytes", "/tmp/x")
    with pytest.raises(qtx.UnsupportedError, match="has no qtx_agent_stats_json"):
        agent.stats()
    with pytest.raises(qtx.UnsupportedError, match="has no qtx_cancel_new"):
        qtx.Cancel()
