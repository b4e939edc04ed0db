"""qtx.vm, the provisioning helpers (qtx/host_vm.h): exact outputs as
tests/integration/c_api_test.cc's ProvisioningHelpers expects from the C
API, the same files as the `qtx vm seed --print` command renders for the
same seed, and the real tools (xorriso, qemu-img) and agent where present."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Dict, Iterator

import pytest

import qtx
from qtx import vm

from conftest import AGENT_BINARY

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g c"
HASH = "$6$saltsalt$" + "a" * 86
CLI = os.path.join(os.path.dirname(AGENT_BINARY), "qtx")  # built beside the agent
INSTALL = ('  - ["sh", "-c", "udevadm settle --timeout=30 || true; mkdir -p /run/qtx-iso && mount -o ro '
           '/dev/disk/by-label/QTX_AGENT_TOOLS /run/qtx-iso && sh /run/qtx-iso/install.sh; status=$?; '
           'umount /run/qtx-iso 2>/dev/null; exit $status"]\n')


@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="qtx-py-vm-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def full_seed() -> vm.Seed:
    return vm.Seed("vm1", users=[vm.User("ops", ssh_authorized_keys=[KEY], password_hash=HASH, sudo=True)],
                   packages=["htop", "curl=7.88.1-10"], network=vm.Network.STATIC, mac="52:54:00:00:00:01",
                   addresses=["192.0.2.10/24"], gateway4="192.0.2.1", dns=["192.0.2.53"], search=["example.org"])


def test_parse_size():
    assert vm.parse_size("20G") == 20 << 30
    assert vm.parse_size("512M") == 512 << 20
    assert vm.parse_size("1.5T") == 3 << 39
    assert vm.parse_size("20GiB") == 20 << 30
    assert vm.parse_size("4096") == 4096
    assert vm.parse_size("0") == 0
    with pytest.raises(qtx.InvalidArgumentError) as e:
        vm.parse_size("20Q")
    assert e.value.kind == "invalid_argument" and e.value.code == 6
    assert isinstance(e.value, ValueError)
    assert e.value.message  # the library says why


def test_render_seed_exact():
    files = vm.render_seed(full_seed())
    assert files.meta_data.startswith('instance-id: "qtx-')
    instance_id = files.meta_data.split('"')[1]
    assert len(instance_id) == len("qtx-") + 16
    assert files.meta_data == 'instance-id: "%s"\nlocal-hostname: "vm1"\n' % instance_id
    assert files.user_data == (
        "#cloud-config\n"
        "# Written by qtx: first-boot setup of this VM and its guest agent.\n"
        'hostname: "vm1"\n'
        "manage_etc_hosts: true\n"
        "users:\n"
        '  - name: "ops"\n'
        '    shell: "/bin/bash"\n'
        "    lock_passwd: false\n"
        '    passwd: "%s"\n'
        '    sudo: "ALL=(ALL) NOPASSWD:ALL"\n'
        "    ssh_authorized_keys:\n"
        '      - "%s"\n'
        "package_update: true\n"
        "packages:\n"
        '  - "htop"\n'
        '  - "curl=7.88.1-10"\n'
        "growpart:\n"
        '  mode: "auto"\n'
        "  devices:\n"
        '    - "/"\n'
        "  ignore_growroot_disabled: false\n"
        "resize_rootfs: true\n"
        "runcmd:\n" + INSTALL) % (HASH, KEY)
    assert files.network_config == (
        "# cloud-init network config, version 2 (written by qtx)\n"
        "version: 2\n"
        "ethernets:\n"
        "  primary:\n"
        "    match:\n"
        '      macaddress: "52:54:00:00:00:01"\n'
        "    dhcp4: false\n"
        "    addresses:\n"
        '      - "192.0.2.10/24"\n'
        '    gateway4: "192.0.2.1"\n'
        "    nameservers:\n"
        "      addresses:\n"
        '        - "192.0.2.53"\n'
        "      search:\n"
        '        - "example.org"\n')
    # The same seed is the same instance; a changed one is another.
    assert vm.render_seed(full_seed()).meta_data == files.meta_data
    other = full_seed()
    other.packages = ["htop"]
    assert vm.render_seed(other).meta_data != files.meta_data


def test_render_seed_as_c_api_test_expects():
    # c_api_test ProvisioningHelpers' seed, field for field.
    seed = vm.Seed("vm1", users=[vm.User("ops", ssh_authorized_keys=[KEY])], network=vm.Network.STATIC,
                   mac="52:54:00:00:00:01", addresses=["192.0.2.10/24"], gateway4="192.0.2.1")
    files = vm.render_seed(seed)
    assert '    ssh_authorized_keys:\n      - "ssh-ed25519 ' in files.user_data
    assert "install.sh" in files.user_data
    assert 'growpart:\n  mode: "auto"' in files.user_data
    assert '    gateway4: "192.0.2.1"\n' in files.network_config
    assert files.meta_data.startswith('instance-id: "qtx-')
    assert "    lock_passwd: true\n" in files.user_data and "sudo" not in files.user_data

    seed.gateway4 = "198.51.100.1"
    with pytest.raises(qtx.InvalidArgumentError) as e:
        vm.render_seed(seed)
    assert e.value.message == ('gateway "198.51.100.1" is in none of the addresses\' subnets: '
                               "the guest could not reach it")
    seed.gateway4 = "192.0.2.1"
    seed.network = 7  # not a mode
    with pytest.raises(qtx.InvalidArgumentError):
        vm.render_seed(seed)


def test_render_seed_defaults_and_options():
    files = vm.render_seed(vm.Seed("vm1"))
    assert files.network_config == ""  # Network.NONE: cloud-init's default
    assert "users:" not in files.user_data and "packages:" not in files.user_data
    assert files.user_data.endswith("runcmd:\n" + INSTALL)

    files = vm.render_seed(vm.Seed("vm1", instance_id="i-1", install_agent=False, grow_root=False))
    assert files.meta_data == 'instance-id: "i-1"\nlocal-hostname: "vm1"\n'
    assert "install.sh" not in files.user_data
    assert 'growpart:\n  mode: "off"\nresize_rootfs: false\n' in files.user_data

    files = vm.render_seed(vm.Seed("vm1", agent_iso_label="MY_TOOLS"))
    assert "/dev/disk/by-label/MY_TOOLS " in files.user_data

    files = vm.render_seed(vm.Seed("vm1", network=vm.Network.DHCP, interface="eth0"))
    assert "    match:\n      name: \"eth0\"\n" in files.network_config
    assert "    dhcp4: true\n" in files.network_config

    # Two users: the array strides by each element's struct_size.
    files = vm.render_seed(vm.Seed("vm1", users=[vm.User("alice"), vm.User("bob", sudo=True)]))
    assert '  - name: "alice"\n' in files.user_data and '  - name: "bob"\n' in files.user_data
    assert files.user_data.count("NOPASSWD") == 1

    for bad in (vm.Seed(""), vm.Seed("vm1", users=[vm.User("root")]), vm.Seed("vm1", packages=["a b"]),
                vm.Seed("vm1", users=[vm.User("ops", password_hash="secret")])):
        with pytest.raises(qtx.InvalidArgumentError):
            vm.render_seed(bad)
    with pytest.raises(TypeError):
        vm.render_seed(vm.Seed("vm1", packages="htop"))  # a string, not a list of them


def _cli_files(args) -> Dict[str, str]:
    out = subprocess.run([CLI, "vm", "seed"] + args + ["--print"], check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE).stdout.decode()
    files: Dict[str, str] = {}
    name = None
    for line in out.splitlines(keepends=True):
        if line.startswith("--- "):
            name = line[4:].strip()
            files[name] = ""
        else:
            files[name] += line
    return files


@pytest.mark.skipif(not os.access(CLI, os.X_OK), reason="the qtx command is not built beside the agent")
def test_render_seed_matches_the_command():
    cli = _cli_files(["--hostname", "vm1", "--user", "ops", "--ssh-key", KEY, "--password-hash", HASH, "--sudo",
                      "--package", "htop", "--package", "curl=7.88.1-10", "--mac", "52:54:00:00:00:01",
                      "--address", "192.0.2.10/24", "--gateway", "192.0.2.1", "--dns", "192.0.2.53", "--search",
                      "example.org"])
    files = vm.render_seed(full_seed())
    assert cli == {"meta-data": files.meta_data, "user-data": files.user_data,
                   "network-config": files.network_config}


@pytest.mark.skipif(shutil.which("xorriso") is None, reason="xorriso is not installed")
def test_write_seed_iso_is_idempotent(tmp):
    out = os.path.join(tmp, "seed.iso")
    first = vm.write_seed_iso(full_seed(), out)
    assert first.created is True
    assert first.instance_id == vm.render_seed(full_seed()).meta_data.split('"')[1]
    with open(out, "rb") as f:
        image = f.read()
    assert image[0x8001:0x8006] == b"CD001"  # an ISO 9660 primary volume descriptor
    assert image[0x8028:0x8028 + 6] == b"cidata"  # its volume id, as NoCloud looks for it
    again = vm.write_seed_iso(full_seed(), out)
    assert again == vm.SeedIso(first.instance_id, False)
    with open(out, "rb") as f:
        assert f.read() == image  # untouched
    other = full_seed()
    other.packages = []
    with pytest.raises(qtx.AlreadyExistsError):
        vm.write_seed_iso(other, out)  # a different seed there: refused
    assert vm.write_seed_iso(other, out, overwrite=True).created is True
    with pytest.raises(qtx.InvalidArgumentError):
        vm.write_seed_iso(vm.Seed("-bad-"), os.path.join(tmp, "bad.iso"))
    assert not os.path.exists(os.path.join(tmp, "bad.iso"))  # checked before anything is written


def test_channel_wiring():
    assert vm.channel_wiring("/run/vm1.sock") == (
        "-chardev\nsocket,id=qtx0,path=/run/vm1.sock,server=on,wait=off\n"
        "-device\nvirtio-serial-pci,id=qtx0-serial\n"
        "-device\nvirtserialport,bus=qtx0-serial.0,chardev=qtx0,name=org.quantix.agent.0\n")
    assert vm.channel_wiring("/run/vm1.sock", format=vm.Wiring.LIBVIRT) == (
        "<channel type='unix'>\n  <source mode='bind' path='/run/vm1.sock'/>\n"
        "  <target type='virtio' name='org.quantix.agent.0'/>\n</channel>\n")
    listens = vm.channel_wiring("/run/vm1.sock", port="org.example.1", host_listens=True)
    assert "reconnect=1" in listens and "name=org.example.1" in listens and "server=on" not in listens
    with pytest.raises(qtx.InvalidArgumentError):
        vm.channel_wiring("/run/vm1.sock", format=9)
    with pytest.raises(qtx.InvalidArgumentError):
        vm.channel_wiring("relative.sock")


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
def test_create_overlay(tmp):
    backing = os.path.join(tmp, "backing.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", backing, "16M"], check=True)
    out = os.path.join(tmp, "disk.qcow2")
    first = vm.create_overlay(backing, out)  # size 0: the backing file's
    assert first.created is True
    assert first.command == "qemu-img create -q -f qcow2 -b %s -F qcow2 %s" % (backing, out)
    assert os.path.exists(out)
    again = vm.create_overlay(backing, out)
    assert again.created is False  # the same overlay: left alone
    with pytest.raises(qtx.AlreadyExistsError):
        vm.create_overlay(backing, out, size="32M")  # a different one there
    grown = vm.create_overlay(backing, out, size="32M", overwrite=True)
    assert grown.created is True and grown.command.endswith(" %s 33554432" % out)
    with pytest.raises(qtx.InvalidArgumentError):
        vm.create_overlay(backing, os.path.join(tmp, "small.qcow2"), size="8M")  # smaller than the image
    with pytest.raises(qtx.NotFoundError):
        vm.create_overlay(os.path.join(tmp, "none.qcow2"), os.path.join(tmp, "o.qcow2"))


def test_wait_ready_against_nothing(tmp):
    with pytest.raises(qtx.DeadlineError) as e:
        vm.wait_ready(os.path.join(tmp, "agent.sock"), timeout=0.2)
    assert e.value.seen is vm.Seen.SOCKET_ABSENT
    assert e.value.kind == "timeout" and isinstance(e.value, TimeoutError)
    assert "socket_absent" in e.value.message


def test_wait_ready_against_an_agent(start_agent):
    proc = start_agent()
    assert vm.wait_ready(proc.socket, timeout=20) is vm.Seen.READY
