"""Provisioning helpers (qtx/host_vm.h, docs/provisioning.md): a qcow2
overlay on a cloud image, a cloud-init NoCloud seed that installs the agent,
the agent channel's QEMU arguments or libvirt XML, and a wait for the agent
that says how far it got.

    from qtx import vm
    vm.create_overlay(image, "disk.qcow2")                 # size 0: the image's
    seed = vm.Seed("vm1", users=[vm.User("ops", ssh_authorized_keys=[key], sudo=True)],
                   network=vm.Network.STATIC, mac=mac, addresses=["192.0.2.10/24"], gateway4="192.0.2.1")
    vm.write_seed_iso(seed, "seed.iso")
    args = vm.channel_wiring("/run/qtx/vm1.sock").split("\\n")
    vm.wait_ready("/run/qtx/vm1.sock", timeout=600)

Every function checks its whole input before it writes anything; a bad
value raises InvalidArgumentError (also a ValueError) with the library's
message. Nothing here needs a Manager.
"""

from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass
from typing import Any, List, NamedTuple, Optional, Sequence

from . import _lib
from ._core import check, need, timeout_ms
from .errors import QtxError, from_c

__all__ = [
    "parse_size", "create_overlay", "Overlay", "User", "Seed", "Network", "SeedFiles", "render_seed",
    "write_seed_iso", "SeedIso", "Wiring", "channel_wiring", "Seen", "wait_ready",
]

OVERWRITE = 1  # QTX_VM_OVERWRITE


class Network(enum.IntEnum):
    """qtx_vm_network_mode."""
    NONE = 0  # no network-config: cloud-init's default (DHCP on the first NIC)
    DHCP = 1
    STATIC = 2


class Wiring(enum.IntEnum):
    """qtx_vm_wiring."""
    QEMU = 0  # QEMU arguments, one per line
    LIBVIRT = 1  # the domain XML <channel> element


class Seen(enum.IntEnum):
    """qtx_vm_seen: how far a wait for the agent got."""
    SOCKET_ABSENT = 0  # the VM is not running, or the channel is wired elsewhere
    NO_CONNECTION = 1  # a socket nothing accepts on: a stale one
    NO_HANDSHAKE = 2  # connected, no agent answered: booting, or no agent
    READY = 3


@dataclass
class User:
    """qtx_vm_user. password_hash: a crypt(3) hash only (openssl passwd -6);
    None locks the password."""
    name: str
    ssh_authorized_keys: Sequence[str] = ()
    password_hash: Optional[str] = None
    sudo: bool = False  # passwordless sudo


@dataclass
class Seed:
    """qtx_vm_seed; every default is the C API's zero field's default."""
    hostname: str
    instance_id: Optional[str] = None  # None: derived from the seed ("qtx-" and 16 hex digits)
    users: Sequence[User] = ()
    packages: Sequence[str] = ()  # "NAME" or "NAME=VERSION"
    install_agent: bool = True  # from the disc labelled agent_iso_label
    agent_iso_label: Optional[str] = None  # None: QTX_AGENT_TOOLS
    grow_root: bool = True  # grow the root partition and filesystem into the disk
    network: Network = Network.NONE
    mac: Optional[str] = None  # the NIC, by MAC address ...
    interface: Optional[str] = None  # ... or by name
    addresses: Sequence[str] = ()  # "ADDRESS/PREFIX"
    gateway4: Optional[str] = None
    gateway6: Optional[str] = None
    dns: Sequence[str] = ()
    search: Sequence[str] = ()


class Overlay(NamedTuple):
    command: str  # the qemu-img command line (empty when nothing was run)
    created: bool  # False: the same overlay was already there


class SeedFiles(NamedTuple):
    meta_data: str
    user_data: str
    network_config: str  # "" when the network is Network.NONE


class SeedIso(NamedTuple):
    instance_id: str
    created: bool  # False: the same ISO was already there


def _text(s: Optional[str], what: str) -> Optional[bytes]:
    if s is None:
        return None
    if not isinstance(s, str):
        raise TypeError("%s must be a str, not %s" % (what, type(s).__name__))
    return s.encode("utf-8")


class _CSeed:
    """A qtx_vm_seed and everything its pointers point at, alive as long as
    this object: the library reads them only during the call."""

    def __init__(self, seed: Seed) -> None:
        if not isinstance(seed, Seed):
            raise TypeError("seed must be a qtx.vm.Seed, not %s" % type(seed).__name__)
        self._keep: List[Any] = []
        c = _lib.init(_lib.VmSeed())
        c.hostname = _text(seed.hostname, "hostname")
        c.instance_id = _text(seed.instance_id, "instance_id")
        users = list(seed.users)
        if users:
            array = (_lib.VmUser * len(users))()  # each struct_size: the stride
            for i, u in enumerate(users):
                if not isinstance(u, User):
                    raise TypeError("users[%d] must be a qtx.vm.User, not %s" % (i, type(u).__name__))
                cu = _lib.init(array[i])
                cu.name = _text(u.name, "users[%d].name" % i)
                cu.ssh_authorized_keys = self._list(u.ssh_authorized_keys, "users[%d].ssh_authorized_keys" % i)
                cu.password_hash = _text(u.password_hash, "users[%d].password_hash" % i)
                cu.sudo = 1 if u.sudo else 0
            self._keep.append(array)
            c.users = ctypes.cast(array, ctypes.POINTER(_lib.VmUser))
            c.n_users = len(users)
        c.packages = self._list(seed.packages, "packages")
        c.skip_agent_install = 0 if seed.install_agent else 1
        c.agent_iso_label = _text(seed.agent_iso_label, "agent_iso_label")
        c.no_grow_root = 0 if seed.grow_root else 1
        c.network_mode = int(seed.network)
        c.mac = _text(seed.mac, "mac")
        c.interface = _text(seed.interface, "interface")
        c.addresses = self._list(seed.addresses, "addresses")
        c.gateway4 = _text(seed.gateway4, "gateway4")
        c.gateway6 = _text(seed.gateway6, "gateway6")
        c.dns = self._list(seed.dns, "dns")
        c.search = self._list(seed.search, "search")
        self.c = c

    def _list(self, items: Sequence[str], what: str) -> Any:
        """A NULL-terminated char* array, or NULL when empty."""
        if isinstance(items, (str, bytes)):
            raise TypeError("%s must be a sequence of str, not a single string" % what)
        values = [_text(s, "%s[%d]" % (what, i)) for i, s in enumerate(items)]
        if not values:
            return None
        array = (ctypes.c_char_p * (len(values) + 1))(*values, None)
        self._keep.append(array)
        return ctypes.cast(array, ctypes.POINTER(ctypes.c_char_p))


def parse_size(text: str) -> int:
    """"20G", "512M", "1.5T", "20GiB", "0" ... to bytes (binary units)."""
    bytes_ = ctypes.c_uint64()
    err = _lib.Error()
    check(need("qtx_vm_parse_size")(_text(text, "text"), ctypes.byref(bytes_), ctypes.byref(err)), err)
    return bytes_.value


def _size(size: Any) -> int:
    if isinstance(size, str):
        return parse_size(size)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError("size must be a byte count >= 0 or a text like \"20G\", not %r" % (size,))
    return size


def create_overlay(backing: str, output: str, size: Any = 0, overwrite: bool = False) -> Overlay:
    """A qcow2 overlay `output` on `backing` (its format detected). size:
    bytes or "20G"; 0 is the backing file's virtual size, and smaller than
    it is refused. An existing, different `output` raises
    AlreadyExistsError unless overwrite; the same overlay is left alone
    (created False). A missing backing file: NotFoundError."""
    fn = need("qtx_vm_create_overlay")
    command = ctypes.c_void_p()
    created = ctypes.c_int(0)
    err = _lib.Error()
    L = _lib.lib()
    try:
        rc = fn(_text(backing, "backing"), _text(output, "output"), _size(size), OVERWRITE if overwrite else 0,
                ctypes.byref(command), ctypes.byref(created), ctypes.byref(err))
    finally:
        text = L.take_string(command)
    check(rc, err)
    return Overlay(text, created.value == 1)


def render_seed(seed: Seed) -> SeedFiles:
    """The seed's files, rendered and checked, without writing anything."""
    fn = need("qtx_vm_render_seed")
    c = _CSeed(seed)
    outs = [ctypes.c_void_p() for _ in range(3)]
    err = _lib.Error()
    L = _lib.lib()
    try:
        rc = fn(ctypes.byref(c.c), ctypes.byref(outs[0]), ctypes.byref(outs[1]), ctypes.byref(outs[2]),
                ctypes.byref(err))
    finally:
        texts = [L.take_string(o) for o in outs]
    check(rc, err)
    return SeedFiles(*texts)


def write_seed_iso(seed: Seed, output: str, overwrite: bool = False) -> SeedIso:
    """The seed as a NoCloud ISO (volume id cidata) at `output`, written
    beside it and renamed over it. The same seed gives the same bytes: a
    second run finds it there (created False). A different file at
    `output` raises AlreadyExistsError unless overwrite. Needs xorriso."""
    fn = need("qtx_vm_write_seed_iso")
    c = _CSeed(seed)
    instance_id = ctypes.c_void_p()
    created = ctypes.c_int(0)
    err = _lib.Error()
    L = _lib.lib()
    try:
        rc = fn(ctypes.byref(c.c), _text(output, "output"), OVERWRITE if overwrite else 0, ctypes.byref(instance_id),
                ctypes.byref(created), ctypes.byref(err))
    finally:
        text = L.take_string(instance_id)
    check(rc, err)
    return SeedIso(text, created.value == 1)


def channel_wiring(socket_path: str, port: Optional[str] = None, host_listens: bool = False,
                   format: Wiring = Wiring.QEMU) -> str:
    """The agent channel: QEMU arguments, one per line (Wiring.QEMU), or the
    libvirt <channel> element (Wiring.LIBVIRT). port None:
    org.quantix.agent.0. host_listens: the library listens and QEMU
    connects. The path must be absolute."""
    fn = need("qtx_vm_channel_wiring")
    text = ctypes.c_void_p()
    err = _lib.Error()
    L = _lib.lib()
    try:
        rc = fn(_text(socket_path, "socket_path"), _text(port, "port"), 1 if host_listens else 0, int(format),
                ctypes.byref(text), ctypes.byref(err))
    finally:
        out = L.take_string(text)
    check(rc, err)
    return out


def wait_ready(socket_path: str, timeout: float = 60.0) -> Seen:
    """Connects to `socket_path` and retries until an agent completes the
    handshake (returns Seen.READY) or `timeout` seconds pass: then
    DeadlineError (a TimeoutError) whose `seen` is how far it got and whose
    message says why. Another kind (AlreadyExistsError: the socket has an
    owner) has `seen` None. Blocks the calling thread; no cancellation (the
    C function takes no token)."""
    if timeout is None:
        raise ValueError("wait_ready needs a timeout")
    fn = need("qtx_vm_wait_ready")
    seen = ctypes.c_int(-1)
    err = _lib.Error()
    rc = fn(_text(socket_path, "socket_path"), timeout_ms(timeout), ctypes.byref(seen), ctypes.byref(err))
    if rc != 0:
        e: QtxError = from_c(rc, err)
        e.seen = Seen(seen.value) if seen.value in Seen._value2member_map_ else None  # type: ignore[attr-defined]
        raise e
    return Seen(seen.value)
