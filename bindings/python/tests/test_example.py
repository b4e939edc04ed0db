"""examples/python/quickstart.py against a real agent: its whole output."""

from __future__ import annotations

import os
import re
import subprocess
import sys


from conftest import SOURCE_DIR


def test_quickstart(agent_proc):
    env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "bindings", "python"))
    out = subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "examples", "python", "quickstart.py"),
                          agent_proc.socket, "--guest-dir", agent_proc.files, "--ready-timeout", "20"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert out.returncode == 0, out.stderr.decode() + "\nagent log:\n" + agent_proc.log()
    lines = out.stdout.decode().splitlines()
    assert lines[0] == "hostname: " + os.uname().nodename
    assert lines[1] == "kernel: " + os.uname().release
    assert sorted(lines[2:4]) == ["stderr: err", "stdout: out"]
    assert lines[4] == "exit: 0"
    assert re.fullmatch(r"copied 2000 bytes in and out, sha256 [0-9a-f]{64}, same", lines[5])
    assert len(lines) == 9
    seqs = [int(re.match(r"telemetry seq=(\d+) uptime_ms=\d+ mem_available=\d+$", l).group(1)) for l in lines[6:]]
    assert seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]
    assert os.listdir(agent_proc.files) == []  # the guest copy was removed
