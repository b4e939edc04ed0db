"""The binding against the test VM (label vm): QEMU boots the guest built
into $QTX_VM_DIR (vmlinuz, initramfs.cpio.gz) with the agent on a
virtio-serial port; info, exec, and a file copied in and out."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

import qtx

VM_DIR = os.environ.get("QTX_VM_DIR", "")
pytestmark = pytest.mark.skipif(not VM_DIR, reason="QTX_VM_DIR is not set (the vm stage sets it)")


def _qemu() -> str:
    for d in ("/usr/bin", "/usr/local/bin"):
        p = os.path.join(d, "qemu-system-x86_64")
        if os.access(p, os.X_OK):
            return p
    pytest.fail("qemu-system-x86_64 is not installed")


def test_info_exec_and_copy_in_the_vm(manager):
    work = tempfile.mkdtemp(prefix="qtx-py-vm-")
    sock = os.path.join(work, "qtx.sock")
    console = open(os.path.join(work, "console.log"), "wb")
    qemu = subprocess.Popen(
        [_qemu(), "-m", "256", "-nographic", "-kernel", os.path.join(VM_DIR, "vmlinuz"), "-initrd",
         os.path.join(VM_DIR, "initramfs.cpio.gz"), "-append", "console=ttyS0 quiet panic=-1", "-device",
         "virtio-serial-pci,id=vser0", "-chardev", "socket,id=qtx0,path=%s,server=on,wait=off" % sock, "-device",
         "virtserialport,bus=vser0.0,chardev=qtx0,name=org.quantix.agent.0"],
        stdin=subprocess.DEVNULL, stdout=console, stderr=console)
    try:
        agent = manager.add(sock)  # connects (and reconnects) to QEMU's socket
        try:
            agent.wait_ready(timeout=120)  # TCG boot on a loaded machine
        except qtx.QtxError as e:
            with open(os.path.join(work, "console.log"), "rb") as f:
                pytest.fail("%s; console:\n%s" % (e, f.read().decode("utf-8", "replace")[-4000:]))
        info = agent.info()
        assert info["arch"] == "x86_64" and info["kernel_release"]
        r = agent.exec(["/bin/sh", "-c", "echo out; echo err >&2; exit 4"], timeout=60)
        assert (r.exit_code, r.stdout, r.stderr) == (4, b"out\n", b"err\n")
        data = os.urandom(256 * 1024)
        src, back = os.path.join(work, "src"), os.path.join(work, "back")
        with open(src, "wb") as f:
            f.write(data)
        up = agent.upload(src, "/tmp/py-vm-copy", timeout=120)
        assert up.sha256 == hashlib.sha256(data).hexdigest()
        agent.download("/tmp/py-vm-copy", back, timeout=120)
        with open(back, "rb") as f:
            assert f.read() == data
    finally:
        qemu.send_signal(signal.SIGKILL)
        qemu.wait()
        console.close()
        shutil.rmtree(work, ignore_errors=True)
