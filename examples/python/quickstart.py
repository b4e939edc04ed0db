#!/usr/bin/env python3
"""qtx quickstart: the same steps as examples/go.

    quickstart.py SOCKET [--listen]

Waits for the agent behind SOCKET (QEMU's virtio-serial chardev socket) to
be ready, prints its hostname and kernel, runs a command with its output
streamed, copies a small file in and back out and compares the bytes, and
prints three telemetry samples.
"""

import argparse
import os
import sys
import tempfile

import qtx


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("socket")
    ap.add_argument("--listen", action="store_true", help="listen on SOCKET (QEMU connects: server=off)")
    ap.add_argument("--guest-dir", default="/tmp", help="where the file goes in the guest")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    args = ap.parse_args()

    with qtx.Manager() as manager:
        agent = manager.add(args.socket, listen=args.listen)
        agent.wait_ready(timeout=args.ready_timeout)

        info = agent.info()
        print("hostname: %s" % info["hostname"])
        print("kernel: %s" % info["kernel_release"])

        with agent.start(["/bin/sh", "-c", "echo out; echo err >&2"], timeout=30) as proc:
            for stream, data in proc.chunks():
                name = "stdout" if stream == qtx.STDOUT else "stderr"
                for line in data.decode().splitlines():
                    print("%s: %s" % (name, line))
            print("exit: %d" % proc.wait().exit_code)

        payload = b"hello from the host\n" * 100
        guest_path = args.guest_dir.rstrip("/") + "/qtx-quickstart-%d" % os.getpid()
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "in")
            with open(src, "wb") as f:
                f.write(payload)
            up = agent.upload(src, guest_path, timeout=60)
            back = os.path.join(tmp, "out")
            agent.download(guest_path, back, timeout=60)
            with open(back, "rb") as f:
                same = f.read() == payload
        agent.remove(guest_path)
        print("copied %d bytes in and out, sha256 %s, %s" % (up.bytes, up.sha256, "same" if same else "DIFFERENT"))
        if not same:
            return 1

        with agent.telemetry() as samples:
            for _, s in zip(range(3), samples):
                mem = s.get("memory", {})
                print("telemetry seq=%s uptime_ms=%s mem_available=%s" %
                      (s.get("seq"), s.get("uptime_ms"), mem.get("available_bytes", "?")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
