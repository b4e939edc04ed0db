"""examples/python/quickstart.py against a real agent: its whole output."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import SOURCE_DIR


def test_quickstart(agent_proc):
    env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "bindings", "python"))
    p = subprocess.Popen([sys.executable, os.path.join(SOURCE_DIR, "examples", "python", "quickstart.py"),
                          agent_proc.socket], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode() + "\nagent log:\n" + agent_proc.log()
    lines = out.decode().splitlines()
    assert lines[0] == "hostname: " + os.uname().nodename
    assert lines[1] == "kernel: " + os.uname().release
    assert sorted(lines[2:4]) == ["stderr: err", "stdout: out"]
    assert lines[4] == "exit code: 0"
    assert re.fullmatch(r"upload and download: 1500 bytes, sha256 [0-9a-f]{64}, identical", lines[5]), lines[5]
    assert len(lines) == 9, lines
    seqs = []
    for line in lines[6:]:
        m = re.fullmatch(r"telemetry (\d+): cpu \d+\.\d% busy, \d+ MiB of [1-9]\d* MiB available, [1-9]\d* processes",
                         line)
        assert m, line
        seqs.append(int(m.group(1)))
    assert seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]
    assert not os.path.exists("/tmp/qtx-quickstart-%d.txt" % p.pid)  # the guest copy was removed


def test_quickstart_usage():
    env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "bindings", "python"))
    r = subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "examples", "python", "quickstart.py")], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert (r.returncode, r.stderr) == (2, b"usage: quickstart SOCKET\n")
