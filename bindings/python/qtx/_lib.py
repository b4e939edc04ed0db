"""The C API of libqtx-host (qtx/host.h) declared for ctypes.

Loading: $QTX_HOST_LIBRARY when set (a path), else "libqtx-host.so.0"
through the dynamic loader's usual search (ld.so.conf, LD_LIBRARY_PATH).
The library's major version must be the one this module was written for;
a function this library lacks (an older 0.x) is None here and the calls
that need it raise UnsupportedError naming it.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_int, c_size_t, c_uint32, c_uint64,
                    c_void_p)
from typing import Any, Optional

# The header this module mirrors: qtx/host.h 0.2.0.
WRITTEN_FOR = (0, 2, 0)
SONAME = "libqtx-host.so.0"


class Error(Structure):
    _fields_ = [("kind", c_int), ("guest_code", c_int), ("os_errno", c_int), ("message", c_char * 512)]


STATE_FN = CFUNCTYPE(None, c_void_p, c_int, POINTER(Error))
RESTARTED_FN = CFUNCTYPE(None, c_void_p, c_char_p, c_char_p)
JSON_FN = CFUNCTYPE(None, c_void_p, c_char_p)
OUTPUT_FN = CFUNCTYPE(None, c_void_p, c_int, POINTER(c_char), c_size_t)
PROGRESS_FN = CFUNCTYPE(None, c_void_p, c_uint64, c_uint64)
RESPONSE_FN = CFUNCTYPE(None, c_void_p, c_char_p, POINTER(Error))


class AgentOptions(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("socket_path", c_char_p),
        ("listen", c_int),
        ("handshake_timeout_ms", c_uint32),
        ("keepalive_interval_ms", c_uint32),
        ("keepalive_timeout_ms", c_uint32),
        ("write_timeout_ms", c_uint32),
        ("on_state", STATE_FN),
        ("on_restarted", RESTARTED_FN),
        ("on_telemetry_json", JSON_FN),
        ("user", c_void_p),
        ("on_event_json", JSON_FN),
    ]


class CallOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("timeout_ms", c_uint32), ("cancel", c_void_p)]


class ExecOptions(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("timeout_ms", c_uint32),
        ("cancel", c_void_p),
        ("stdin_stream", c_int),
        ("on_output", OUTPUT_FN),
        ("user", c_void_p),
    ]


class TransferOptions(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("timeout_ms", c_uint32),
        ("cancel", c_void_p),
        ("mode", c_uint32),
        ("skip_sha256", c_int),
        ("expected_total", c_uint64),
        ("on_progress", PROGRESS_FN),
        ("user", c_void_p),
    ]


# qtx/host_vm.h: the provisioning helpers.
class VmUser(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("name", c_char_p),
        ("ssh_authorized_keys", POINTER(c_char_p)),
        ("password_hash", c_char_p),
        ("sudo", c_int),
    ]


class VmSeed(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("hostname", c_char_p),
        ("instance_id", c_char_p),
        ("users", POINTER(VmUser)),
        ("n_users", c_size_t),
        ("packages", POINTER(c_char_p)),
        ("skip_agent_install", c_int),
        ("agent_iso_label", c_char_p),
        ("no_grow_root", c_int),
        ("network_mode", c_int),
        ("mac", c_char_p),
        ("interface", c_char_p),
        ("addresses", POINTER(c_char_p)),
        ("gateway4", c_char_p),
        ("gateway6", c_char_p),
        ("dns", POINTER(c_char_p)),
        ("search", POINTER(c_char_p)),
    ]


def init(struct: Any) -> Any:
    """What the header's *_options_init functions do: zeroes, struct_size."""
    ctypes.memset(ctypes.addressof(struct), 0, ctypes.sizeof(struct))
    struct.struct_size = ctypes.sizeof(struct)
    return struct


_VP = c_void_p
_P_ERR = POINTER(Error)
_PP = POINTER(c_void_p)  # char** out parameters: freed with qtx_free
_SIG = {
    "qtx_version": (c_uint32, []),
    "qtx_version_string": (c_char_p, []),
    "qtx_error_kind_name": (c_char_p, [c_int]),
    "qtx_state_name": (c_char_p, [c_int]),
    "qtx_free": (None, [_VP]),
    "qtx_manager_new": (_VP, []),
    "qtx_manager_free": (None, [_VP]),
    "qtx_agent_add": (_VP, [_VP, POINTER(AgentOptions), _P_ERR]),
    "qtx_agent_free": (None, [_VP]),
    "qtx_agent_state": (c_int, [_VP]),
    "qtx_agent_wait_ready": (c_int, [_VP, c_uint32, _P_ERR]),
    "qtx_agent_ping": (c_int, [_VP, c_uint32, _P_ERR]),
    "qtx_agent_call_json": (c_int, [_VP, c_char_p, c_uint32, _PP, _P_ERR]),
    "qtx_agent_identity_json": (c_int, [_VP, _PP, _P_ERR]),
    "qtx_agent_latest_telemetry_json": (c_int, [_VP, _PP, _P_ERR]),
    "qtx_agent_exec_json": (c_int, [_VP, c_char_p, c_void_p, c_size_t, c_uint32, OUTPUT_FN, _VP, _PP, _P_ERR]),
    "qtx_agent_upload": (c_int, [_VP, c_char_p, c_char_p, c_uint32, PROGRESS_FN, _VP, c_void_p, _P_ERR]),
    "qtx_agent_download": (c_int, [_VP, c_char_p, c_char_p, PROGRESS_FN, _VP, c_void_p, _P_ERR]),
    "qtx_manager_render_metrics": (c_int, [_VP, c_int, _PP, _P_ERR]),
    "qtx_metrics_content_type": (c_char_p, [c_int]),
    "qtx_metrics_server_start": (_VP, [_VP, c_char_p, POINTER(c_int), _P_ERR]),
    "qtx_metrics_server_free": (None, [_VP]),
    # Since 0.2.
    "qtx_cancel_new": (_VP, []),
    "qtx_cancel_fire": (None, [_VP]),
    "qtx_cancel_fired": (c_int, [_VP]),
    "qtx_cancel_free": (None, [_VP]),
    "qtx_agent_request_json": (c_int, [_VP, c_char_p, POINTER(CallOptions), _PP, _P_ERR]),
    "qtx_agent_request_json_async": (c_int, [_VP, c_char_p, POINTER(CallOptions), RESPONSE_FN, _VP,
                                             POINTER(c_uint64), _P_ERR]),
    "qtx_agent_cancel_call": (None, [_VP, c_uint64]),
    "qtx_agent_stats_json": (c_int, [_VP, _PP, _P_ERR]),
    "qtx_agent_exec_start": (_VP, [_VP, c_char_p, POINTER(ExecOptions), _P_ERR]),
    "qtx_exec_write_stdin": (c_int, [_VP, c_void_p, c_size_t, _P_ERR]),
    "qtx_exec_close_stdin": (c_int, [_VP, _P_ERR]),
    "qtx_exec_read": (c_int, [_VP, c_int, c_void_p, c_size_t, POINTER(c_size_t), _P_ERR]),
    "qtx_exec_wait": (c_int, [_VP, _PP, _P_ERR]),
    "qtx_exec_cancel": (None, [_VP]),
    "qtx_exec_free": (None, [_VP]),
    "qtx_agent_upload_file": (c_int, [_VP, c_char_p, c_char_p, POINTER(TransferOptions), POINTER(c_uint64), c_void_p,
                                      _P_ERR]),
    "qtx_agent_download_file": (c_int, [_VP, c_char_p, c_char_p, POINTER(TransferOptions), POINTER(c_uint64),
                                        c_void_p, _P_ERR]),
    "qtx_agent_upload_start": (_VP, [_VP, c_char_p, POINTER(TransferOptions), _P_ERR]),
    "qtx_agent_download_start": (_VP, [_VP, c_char_p, POINTER(TransferOptions), _P_ERR]),
    "qtx_transfer_write": (c_int, [_VP, c_void_p, c_size_t, _P_ERR]),
    "qtx_transfer_close_write": (c_int, [_VP, _P_ERR]),
    "qtx_transfer_read": (c_int, [_VP, c_void_p, c_size_t, POINTER(c_size_t), _P_ERR]),
    "qtx_transfer_wait": (c_int, [_VP, POINTER(c_uint64), c_void_p, _P_ERR]),
    "qtx_transfer_cancel": (None, [_VP]),
    "qtx_transfer_free": (None, [_VP]),
    # qtx/host_vm.h.
    "qtx_vm_parse_size": (c_int, [c_char_p, POINTER(c_uint64), _P_ERR]),
    "qtx_vm_create_overlay": (c_int, [c_char_p, c_char_p, c_uint64, c_int, _PP, POINTER(c_int), _P_ERR]),
    "qtx_vm_render_seed": (c_int, [POINTER(VmSeed), _PP, _PP, _PP, _P_ERR]),
    "qtx_vm_write_seed_iso": (c_int, [POINTER(VmSeed), c_char_p, c_int, _PP, POINTER(c_int), _P_ERR]),
    "qtx_vm_channel_wiring": (c_int, [c_char_p, c_char_p, c_int, c_int, _PP, _P_ERR]),
    "qtx_vm_wait_ready": (c_int, [c_char_p, c_uint32, POINTER(c_int), _P_ERR]),
}


class Library:
    """The loaded library: one attribute per C function (None when absent)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dll = ctypes.CDLL(path)  # CDLL: the GIL is released during every call
        for name, (restype, argtypes) in _SIG.items():
            fn = getattr(self.dll, name, None)
            if fn is not None:
                fn.restype = restype
                fn.argtypes = argtypes
            setattr(self, name, fn)
        version = self.qtx_version()
        self.version = (version >> 16, (version >> 8) & 0xFF, version & 0xFF)
        if self.version[0] != WRITTEN_FOR[0]:
            raise ImportError("qtx: %s is version %d.%d.%d; this package was written for major %d" %
                              (path, self.version[0], self.version[1], self.version[2], WRITTEN_FOR[0]))

    def has(self, name: str) -> bool:
        return getattr(self, name) is not None

    def take_string(self, p: c_void_p) -> str:
        """The text of a char* the library malloc'ed; frees it."""
        if not p.value:
            return ""
        try:
            return ctypes.string_at(p.value).decode("utf-8")
        finally:
            self.qtx_free(p)


_lib: Optional[Library] = None


def lib() -> Library:
    """The library, loaded on first use."""
    global _lib
    if _lib is None:
        _lib = Library(os.environ.get("QTX_HOST_LIBRARY") or SONAME)
    return _lib
