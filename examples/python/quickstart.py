#!/usr/bin/env python3
"""Quickstart: the Python binding's tour, the same program as the Go
example (examples/go/quickstart). Give it a VM's agent socket (QEMU's
chardev, server=on):

    PYTHONPATH=bindings/python python3 examples/python/quickstart.py /run/qtx/vm1.sock

It waits for the agent, prints the guest's hostname and kernel, runs a
command whose output streams back, uploads a small file and downloads it
back comparing the bytes, and prints three telemetry samples. It exits 0
on success, 1 with the error on stderr otherwise.
"""

import io
import os
import sys

import qtx


def run(socket: str) -> None:
    with qtx.Manager() as manager:
        agent = manager.add(socket)
        try:
            agent.wait_ready(timeout=60)
        except qtx.QtxError as e:
            raise RuntimeError("waiting for the agent: %s" % e) from e
        info = agent.info(timeout=60)
        print("hostname: %s\nkernel: %s" % (info["hostname"], info["kernel_release"]))

        # Output as it comes: (stream, bytes) chunks, printed line by line.
        with agent.start(["sh", "-c", "echo out; echo err >&2"], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                         timeout=60) as proc:
            pending = {qtx.STDOUT: b"", qtx.STDERR: b""}
            for stream, data in proc.chunks():
                pending[stream] += data
                *lines, pending[stream] = pending[stream].split(b"\n")
                for line in lines:
                    print("%s: %s" % ("stdout" if stream == qtx.STDOUT else "stderr", line.decode()))
            result = proc.wait()
        print("exit code: %d" % result.exit_code)

        data = b"qtx quickstart\n" * 100
        guest_path = "/tmp/qtx-quickstart-%d.txt" % os.getpid()
        up = agent.upload(data, guest_path, timeout=60)
        back = io.BytesIO()
        agent.download(guest_path, back, timeout=60)
        if back.getvalue() != data:
            raise RuntimeError("the downloaded bytes differ from the uploaded ones")
        print("upload and download: %d bytes, sha256 %s, identical" % (up.bytes, up.sha256))
        try:
            agent.remove(guest_path, timeout=60)
        except qtx.DeniedError:
            pass

        agent.telemetry_config(interval=0.5, timeout=60)
        with agent.events() as events:
            n = 0
            while n < 3:
                event = events.get(timeout=60)
                s = event.get("telemetry")
                if s is None:
                    continue
                n += 1
                mem = s.get("memory", {})
                print("telemetry %d: cpu %.1f%% busy, %d MiB of %d MiB available, %d processes" %
                      (int(s["seq"]), s.get("cpu", {}).get("busy_pct", 0.0), int(mem.get("available_bytes", 0)) >> 20,
                       int(mem.get("total_bytes", 0)) >> 20, s.get("process_count", 0)))


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: quickstart SOCKET", file=sys.stderr)
        return 2
    try:
        run(sys.argv[1])
    except (qtx.QtxError, RuntimeError) as e:
        print("quickstart: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
