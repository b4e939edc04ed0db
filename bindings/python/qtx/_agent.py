"""Manager and Agent: the C API's qtx_manager and qtx_agent."""

from __future__ import annotations

import atexit
import base64
import ctypes
import io
import json
import os
import threading
import weakref
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Sequence, Set, Union

from . import _lib
from ._core import (Cancel, Guard, Subscription, blocking, callback_scope, check, close_later, join_to_the_end, need,
                    not_in_callback, timeout_ms)
from ._exec import ExecResult, Process, feed
from ._transfer import ProgressFn, Transfer, TransferResult, progress_callback
from .errors import QtxError, from_c

PathLike = Union[str, "os.PathLike[str]"]
Stdin = Union[None, bytes, bytearray, memoryview, BinaryIO]
PIPE = -1  # Agent.start(stdin=PIPE): the caller writes stdin with Process.write

STATES = ("disconnected", "connecting", "handshaking", "ready", "closed")

_managers: "weakref.WeakSet[Manager]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # No callback may enter the interpreter while it finalizes.
    for m in list(_managers):
        m.close()


def _is_file(x: Any) -> bool:
    return hasattr(x, "read") and not isinstance(x, (bytes, bytearray, memoryview, str))


class Manager:
    """One I/O thread for many agents (qtx_manager). Use as a context
    manager, or close(): closing it closes its agents."""

    def __init__(self) -> None:
        self._L = _lib.lib()
        self._h: Optional[int] = self._L.qtx_manager_new()
        if not self._h:
            raise QtxError("qtx_manager_new failed", code=13)
        self._lock = threading.Lock()
        self._agents: List[Agent] = []
        _managers.add(self)

    def add(self, socket_path: PathLike, *, listen: bool = False, handshake_timeout: Optional[float] = None,
            keepalive_interval: Optional[float] = None, keepalive_timeout: Optional[float] = None,
            write_timeout: Optional[float] = None, on_state: Optional[Callable[[str, Optional[QtxError]], None]] = None,
            on_restarted: Optional[Callable[[str, str], None]] = None) -> "Agent":
        """Starts connecting to the agent behind `socket_path` (QEMU's
        chardev socket; listen=True: the library listens and QEMU connects).
        AlreadyExistsError when the socket already has an owner. Timeouts
        are seconds (None: the library's default). on_state(state_name,
        cause) and on_restarted(instance_id, previous) run on the I/O
        thread: they must return quickly and make no blocking qtx call."""
        with self._lock:
            if not self._h:
                raise QtxError("the manager is closed", code=14)
            agent = Agent(self, os.fspath(socket_path), listen, handshake_timeout, keepalive_interval,
                          keepalive_timeout, write_timeout, on_state, on_restarted)
            self._agents.append(agent)
            return agent

    @property
    def agents(self) -> List["Agent"]:
        with self._lock:
            return list(self._agents)

    def metrics(self, openmetrics: bool = False) -> str:
        """Every agent's metrics (docs/metrics.md) as Prometheus text (or
        OpenMetrics); no guest is asked."""
        out = ctypes.c_void_p()
        err = _lib.Error()
        check(self._L.qtx_manager_render_metrics(self._h, 1 if openmetrics else 0, ctypes.byref(out),
                                                 ctypes.byref(err)), err)
        return self._L.take_string(out)

    def _forget(self, agent: "Agent") -> None:
        with self._lock:
            if agent in self._agents:
                self._agents.remove(agent)

    def close(self) -> None:
        """Closes every agent, then the manager. Idempotent."""
        not_in_callback("Manager.close()")
        for a in self.agents:
            a.close()
        with self._lock:
            h, self._h = self._h, None
        if h:
            self._L.qtx_manager_free(h)

    def __del__(self) -> None:
        # The agents' C callbacks live in their Agent objects, which go with
        # this one: the C side must stop first, and not from the collector's
        # thread (it may be the I/O thread).
        if getattr(self, "_h", None):
            close_later(self)

    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Agent:
    """One guest's agent (qtx_agent), from Manager.add.

    Every blocking method takes `timeout` (seconds, float; None: no
    deadline) and `cancel` (a Cancel token); any thread may call them at
    once. close() ends the calls still running (CancelledError or
    ClosedError) and frees the agent."""

    def __init__(self, manager: Manager, path: str, listen: bool, handshake_timeout: Optional[float],
                 keepalive_interval: Optional[float], keepalive_timeout: Optional[float],
                 write_timeout: Optional[float], on_state: Any, on_restarted: Any) -> None:
        self._L = _lib.lib()
        self._manager = manager
        self.socket_path = path
        self._guard = Guard("agent")
        self._subs_lock = threading.Lock()
        self._telemetry_subs: Set[Subscription] = set()
        self._event_subs: Set[Subscription] = set()
        self._handles: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self.callback_errors = 0  # exceptions raised by on_state / on_restarted, swallowed

        def state_cb(_u: Any, state: int, cause: Any) -> None:
            try:
                if on_state is not None:
                    c = from_c(cause.contents.kind, cause.contents) if cause else None
                    with callback_scope():
                        on_state(STATES[state] if 0 <= state < len(STATES) else str(state), c)
            except BaseException:
                self.callback_errors += 1

        def restarted_cb(_u: Any, instance: Optional[bytes], previous: Optional[bytes]) -> None:
            try:
                if on_restarted is not None:
                    with callback_scope():
                        on_restarted((instance or b"").decode(), (previous or b"").decode())
            except BaseException:
                self.callback_errors += 1

        def telemetry_cb(_u: Any, sample: Optional[bytes]) -> None:
            self._fan_out(self._telemetry_subs, sample)

        def event_cb(_u: Any, event: Optional[bytes]) -> None:
            self._fan_out(self._event_subs, event)

        o = _lib.init(_lib.AgentOptions())
        self._path_b = path.encode()
        o.socket_path = self._path_b
        o.listen = 1 if listen else 0
        o.handshake_timeout_ms = timeout_ms(handshake_timeout)
        o.keepalive_interval_ms = timeout_ms(keepalive_interval)
        o.keepalive_timeout_ms = timeout_ms(keepalive_timeout)
        o.write_timeout_ms = timeout_ms(write_timeout)
        # The C callbacks must outlive the agent handle: kept until close().
        self._callbacks = (_lib.STATE_FN(state_cb), _lib.RESTARTED_FN(restarted_cb), _lib.JSON_FN(telemetry_cb),
                           _lib.JSON_FN(event_cb))
        o.on_state, o.on_restarted, o.on_telemetry_json, o.on_event_json = self._callbacks
        err = _lib.Error()
        self._h = self._L.qtx_agent_add(manager._h, ctypes.byref(o), ctypes.byref(err))
        if not self._h:
            raise from_c(err.kind, err)

    def _fan_out(self, subs: Set[Subscription], raw: Optional[bytes]) -> None:
        # I/O thread. Never blocks: each subscription drops its oldest item when full.
        if raw is None or not subs:
            return
        text = raw.decode("utf-8", "replace")
        with self._subs_lock:
            targets = list(subs)
        for s in targets:
            s._push(text)

    def _forget(self, handle: Any) -> None:
        self._handles.discard(handle)

    # --- connection -------------------------------------------------------

    @property
    def state(self) -> str:
        """"disconnected", "connecting", "handshaking", "ready" or "closed"."""
        if self._guard.closed:
            return "closed"
        return STATES[self._L.qtx_agent_state(self._h)]

    def wait_ready(self, timeout: float) -> None:
        """Blocks until the handshake completed (DeadlineError after `timeout`)."""
        ms = timeout_ms(timeout)

        def go(_t: Optional[int]) -> None:
            err = _lib.Error()
            check(self._L.qtx_agent_wait_ready(self._h, ms, ctypes.byref(err)), err)
        self._guard.enter()
        try:
            go(None)  # bounded by its timeout; no token in the C call
        finally:
            self._guard.leave()

    def identity(self) -> Dict[str, Any]:
        """The last handshake's identity (version, instance_id, boot_id,
        capabilities); NotFoundError before the first one."""
        return json.loads(self._string_call("qtx_agent_identity_json"))

    def latest_telemetry(self) -> Optional[Dict[str, Any]]:
        """The last telemetry sample, or None when none came yet."""
        try:
            return json.loads(self._string_call("qtx_agent_latest_telemetry_json"))
        except QtxError as e:
            if e.kind == "not_found":
                return None
            raise

    def stats(self) -> Dict[str, Any]:
        """The connection's and calls' counters (AgentStats), e.g.
        calls_in_flight, calls_ended, bytes_in."""
        need("qtx_agent_stats_json")
        return json.loads(self._string_call("qtx_agent_stats_json"))

    def _string_call(self, name: str) -> str:
        fn = getattr(self._L, name)
        out = ctypes.c_void_p()
        err = _lib.Error()
        self._guard.enter()
        try:
            check(fn(self._h, ctypes.byref(out), ctypes.byref(err)), err)
        finally:
            self._guard.leave()
        return self._L.take_string(out)

    # --- requests ---------------------------------------------------------

    def call(self, request: Dict[str, Any], *, timeout: Optional[float] = None,
             cancel: Optional[Cancel] = None) -> Dict[str, Any]:
        """Any single-answer request as a dict of qtx.agent.v1.Request's
        proto3 JSON, e.g. {"hostname_get": {}}; returns the Response's
        (e.g. {"hostname_get": {"hostname": "vm1"}}). Bytes fields are
        base64 strings, 64-bit integers strings, as proto3 JSON has them."""
        req = json.dumps(request).encode()
        ms = timeout_ms(timeout)
        out = ctypes.c_void_p()
        L = self._L
        if not L.has("qtx_agent_request_json"):  # a 0.1 library: no token
            def go_old(_t: Optional[int]) -> str:
                err = _lib.Error()
                check(L.qtx_agent_call_json(self._h, req, ms, ctypes.byref(out), ctypes.byref(err)), err)
                return L.take_string(out)
            return json.loads(self._guard.run(go_old, cancel))

        def go(token: Optional[int]) -> str:
            o = _lib.init(_lib.CallOptions())
            o.timeout_ms = ms
            o.cancel = token
            err = _lib.Error()
            check(L.qtx_agent_request_json(self._h, req, ctypes.byref(o), ctypes.byref(out), ctypes.byref(err)), err)
            return L.take_string(out)
        return json.loads(self._guard.run(go, cancel))

    def request(self, kind: str, body: Optional[Dict[str, Any]] = None, **kw: Any) -> Dict[str, Any]:
        """call({kind: body}) and the answer's part of the same kind, e.g.
        request("file_stat", {"path": "/etc"}) -> the FileStat dict."""
        return self.call({kind: body or {}}, **kw).get(kind, {})

    def ping(self, payload: bytes = b"", **kw: Any) -> bytes:
        """A round trip to the agent; returns the echoed payload."""
        r = self.request("ping", {"payload": base64.b64encode(payload).decode()} if payload else {}, **kw)
        return base64.b64decode(r.get("payload", ""))

    def info(self, **kw: Any) -> Dict[str, Any]:
        """OS, kernel_release, arch, hostname, timezone, policy, counters."""
        return self.request("info", **kw)

    def hostname(self, **kw: Any) -> str:
        return self.request("hostname_get", **kw).get("hostname", "")

    def set_hostname(self, hostname: str, persist: bool = False, **kw: Any) -> None:
        self.request("hostname_set", {"hostname": hostname, "persist": persist}, **kw)

    def time(self, **kw: Any) -> float:
        """The guest's wall clock, seconds since the epoch."""
        return int(self.request("time_get", **kw).get("unix_time_ns", 0)) / 1e9

    def stat(self, path: str, follow_symlinks: bool = False, **kw: Any) -> Dict[str, Any]:
        """The FileStat of a guest path (type, size, mode, uid, gid, mtime_ns)."""
        return self.request("file_stat", {"path": path, "follow_symlinks": follow_symlinks}, **kw)

    def listdir(self, path: str, **kw: Any) -> List[Dict[str, Any]]:
        """The entries (FileStat dicts, names in "path") of a guest directory."""
        return self.request("file_list", {"path": path}, **kw).get("entries", [])

    def mkdir(self, path: str, mode: int = 0, parents: bool = False, **kw: Any) -> None:
        self.request("file_mkdir", {"path": path, "mode": mode, "parents": parents}, **kw)

    def remove(self, path: str, recursive: bool = False, **kw: Any) -> None:
        self.request("file_remove", {"path": path, "recursive": recursive}, **kw)

    def file_sha256(self, path: str, **kw: Any) -> str:
        """The hex sha256 of a guest file."""
        r = self.request("file_hash", {"path": path}, **kw)
        return base64.b64decode(r.get("sha256", "")).hex()

    def processes(self, **kw: Any) -> List[Dict[str, Any]]:
        return self.request("process_list", **kw).get("processes", [])

    def network(self, **kw: Any) -> List[Dict[str, Any]]:
        return self.request("network", **kw).get("interfaces", [])

    def telemetry_config(self, interval: Optional[float] = None, sample_now: bool = False, per_cpu: bool = False,
                         **kw: Any) -> Dict[str, Any]:
        """Sets the telemetry interval (seconds, >= 0.1; None keeps it)."""
        body: Dict[str, Any] = {"sample_now": sample_now, "per_cpu": per_cpu}
        if interval is not None:
            body["interval_ms"] = timeout_ms(interval)
        return self.request("telemetry_config", body, **kw)

    # --- exec -------------------------------------------------------------

    @staticmethod
    def _exec_request(argv: Sequence[str], env: Optional[Dict[str, str]], cwd: Optional[str], user: Optional[str],
                      merge_stderr: bool, output_limit: Optional[int], stdin: Optional[bytes]) -> Dict[str, Any]:
        req: Dict[str, Any] = {"argv": list(argv)}
        if env is not None:
            req["env"] = ["%s=%s" % kv for kv in env.items()]
        if cwd:
            req["cwd"] = cwd
        if user:
            req["user"] = user
        if merge_stderr:
            req["merge_stderr"] = True
        if output_limit:
            req["output_limit"] = str(output_limit)
        if stdin:
            req["stdin"] = base64.b64encode(stdin).decode()
        return req

    def exec(self, argv: Sequence[str], *, stdin: Stdin = None, env: Optional[Dict[str, str]] = None,
             cwd: Optional[str] = None, user: Optional[str] = None, merge_stderr: bool = False,
             output_limit: Optional[int] = None, timeout: Optional[float] = None,
             cancel: Optional[Cancel] = None) -> ExecResult:
        """Runs argv (no shell unless you name one) and returns its
        ExecResult with all its output. stdin: bytes, or a binary file
        object read by a thread of its own while the command runs. A
        command that runs but fails is a result (exit_code != 0); a call
        that fails (deadline, denied, dropped connection) raises."""
        out: List[bytes] = []
        errb: List[bytes] = []

        def on_output(_u: Any, stream: int, data: Any, n: int) -> None:  # I/O thread: append only
            (errb if stream == 2 else out).append(ctypes.string_at(data, n))
        cb = _lib.OUTPUT_FN(on_output)
        L = self._L
        source = stdin if _is_file(stdin) else None
        data = None if source is not None else (bytes(stdin) if stdin is not None else None)
        if not L.has("qtx_agent_exec_start"):  # a 0.1 library: whole stdin, no token
            if source is not None:
                data = source.read()
            req = json.dumps(self._exec_request(argv, env, cwd, user, merge_stderr, output_limit, None)).encode()
            res = ctypes.c_void_p()

            def go_old(_t: Optional[int]) -> str:
                err = _lib.Error()
                check(L.qtx_agent_exec_json(self._h, req, data, len(data or b""), timeout_ms(timeout), cb, None,
                                            ctypes.byref(res), ctypes.byref(err)), err)
                return L.take_string(res)
            raw = self._guard.run(go_old, cancel)
            return ExecResult.from_json(json.loads(raw), b"".join(out), b"".join(errb))

        req = json.dumps(self._exec_request(argv, env, cwd, user, merge_stderr, output_limit, data)).encode()
        own = cancel is None
        token = cancel or Cancel()
        o = _lib.init(_lib.ExecOptions())
        o.timeout_ms = timeout_ms(timeout)
        o.cancel = token.handle
        o.stdin_stream = 1 if source is not None else 0
        o.on_output = cb
        self._guard.enter(token if own else None)
        try:
            err = _lib.Error()
            h = L.qtx_agent_exec_start(self._h, req, ctypes.byref(o), ctypes.byref(err))
            if not h:
                raise from_c(err.kind, err)
            feeder = None
            feed_errors: List[BaseException] = []
            try:
                if source is not None:
                    def write(b: bytes) -> None:
                        e = _lib.Error()
                        check(L.qtx_exec_write_stdin(h, b, len(b), ctypes.byref(e)), e)

                    def close() -> None:
                        e = _lib.Error()
                        check(L.qtx_exec_close_stdin(h, ctypes.byref(e)), e)
                    feeder = threading.Thread(target=feed, args=(write, close, source, feed_errors),
                                              name="qtx-exec-stdin", daemon=True)
                    feeder.start()
                res = ctypes.c_void_p()

                def go(_t: Optional[int]) -> str:
                    e = _lib.Error()
                    check(L.qtx_exec_wait(h, ctypes.byref(res), ctypes.byref(e)), e)
                    return L.take_string(res)
                raw = blocking(go, token)
            finally:
                if feeder is not None:  # the feeder may still be in a write: end the call, then join
                    L.qtx_exec_cancel(h)
                    join_to_the_end(feeder)
                L.qtx_exec_free(h)  # after it, no output callback runs
            if feed_errors:
                raise feed_errors[0]
            return ExecResult.from_json(json.loads(raw), b"".join(out), b"".join(errb))
        finally:
            self._guard.leave(token if own else None)
            if own:
                token.close()

    def start(self, argv: Sequence[str], *, stdin: Union[Stdin, int] = None, env: Optional[Dict[str, str]] = None,
              cwd: Optional[str] = None, user: Optional[str] = None, merge_stderr: bool = False,
              output_limit: Optional[int] = None, output_window: Optional[int] = None,
              timeout: Optional[float] = None, cancel: Optional[Cancel] = None) -> Process:
        """Starts argv and returns a Process whose output is read as it
        comes (Process.stdout / .stderr / .chunks()). stdin: bytes, a binary
        file object (fed by a thread), or PIPE (write with Process.write,
        end with Process.close_stdin)."""
        L = self._L
        need("qtx_agent_exec_start")
        source = stdin if _is_file(stdin) else None
        pipe = isinstance(stdin, int) and stdin == PIPE
        data = bytes(stdin) if stdin is not None and source is None and not pipe else None  # type: ignore
        req_d = self._exec_request(argv, env, cwd, user, merge_stderr, output_limit, data)
        if output_window:
            req_d["output_window"] = str(output_window)
        req = json.dumps(req_d).encode()
        own = cancel is None
        token = cancel or Cancel()
        o = _lib.init(_lib.ExecOptions())
        o.timeout_ms = timeout_ms(timeout)
        o.cancel = token.handle
        o.stdin_stream = 1 if (source is not None or pipe) else 0
        self._guard.enter()
        try:
            err = _lib.Error()
            h = L.qtx_agent_exec_start(self._h, req, ctypes.byref(o), ctypes.byref(err))
            if not h:
                raise from_c(err.kind, err)
            p = Process(self, h, token, own, source)
            self._handles.add(p)
            return p
        finally:
            self._guard.leave()

    # --- files ------------------------------------------------------------

    def _transfer_options(self, timeout: Optional[float], token: Optional[Cancel], mode: Optional[int],
                          verify_sha256: bool, expected_total: int, cb: Any) -> _lib.TransferOptions:
        o = _lib.init(_lib.TransferOptions())
        o.timeout_ms = timeout_ms(timeout)
        o.cancel = token.handle if token is not None else None
        o.mode = mode or 0
        o.skip_sha256 = 0 if verify_sha256 else 1
        o.expected_total = expected_total
        o.on_progress = cb
        return o

    def open_upload(self, guest_path: str, *, mode: Optional[int] = None, verify_sha256: bool = True,
                    size: int = 0, progress: Optional[ProgressFn] = None, timeout: Optional[float] = None,
                    cancel: Optional[Cancel] = None) -> Transfer:
        """A writable Transfer into `guest_path` (replaced atomically once
        finish() succeeds; nothing is left behind otherwise)."""
        return self._open(True, guest_path, mode, verify_sha256, size, progress, timeout, cancel)

    def open_download(self, guest_path: str, *, verify_sha256: bool = True, progress: Optional[ProgressFn] = None,
                      timeout: Optional[float] = None, cancel: Optional[Cancel] = None) -> Transfer:
        """A readable Transfer of `guest_path`; read until b"", then finish()."""
        return self._open(False, guest_path, None, verify_sha256, 0, progress, timeout, cancel)

    def _open(self, upload: bool, guest_path: str, mode: Optional[int], verify_sha256: bool, size: int,
              progress: Optional[ProgressFn], timeout: Optional[float], cancel: Optional[Cancel]) -> Transfer:
        fn = need("qtx_agent_upload_start" if upload else "qtx_agent_download_start")
        errors: list = []
        cb = progress_callback(progress, errors)
        own = cancel is None
        token = cancel or Cancel()
        o = self._transfer_options(timeout, token, mode, verify_sha256, size, cb)
        self._guard.enter()
        try:
            err = _lib.Error()
            h = fn(self._h, guest_path.encode(), ctypes.byref(o), ctypes.byref(err))
            if not h:
                raise from_c(err.kind, err)
            t = Transfer(self, h, upload, token, own, (cb, errors))
            self._handles.add(t)
            return t
        finally:
            self._guard.leave()

    def upload(self, source: Union[PathLike, bytes, BinaryIO], guest_path: str, *, mode: Optional[int] = None,
               verify_sha256: bool = True, progress: Optional[ProgressFn] = None, timeout: Optional[float] = None,
               cancel: Optional[Cancel] = None) -> TransferResult:
        """Copies a local path, bytes, or a binary file object to
        `guest_path` (mode: the new file's, default 0644). progress(bytes,
        total) runs on the I/O thread; an exception it raises is re-raised
        here once the transfer ended."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = io.BytesIO(bytes(source))
        if _is_file(source):
            size = 0
            try:
                size = os.fstat(source.fileno()).st_size  # type: ignore[union-attr]
            except (OSError, AttributeError, io.UnsupportedOperation):
                if isinstance(source, io.BytesIO):
                    size = len(source.getbuffer())
            with self.open_upload(guest_path, mode=mode, verify_sha256=verify_sha256, size=size, progress=progress,
                                  timeout=timeout, cancel=cancel) as t:
                while True:
                    chunk = source.read(1 << 20)  # type: ignore[union-attr]
                    if not chunk:
                        break
                    t.write(chunk)
                r = t.finish()
                self._raise_callback_errors(t._keep[1])
                return r
        return self._path_transfer(True, os.fspath(source), guest_path, mode, verify_sha256, progress, timeout,
                                   cancel)

    def download(self, guest_path: str, dest: Union[PathLike, BinaryIO], *, verify_sha256: bool = True,
                 progress: Optional[ProgressFn] = None, timeout: Optional[float] = None,
                 cancel: Optional[Cancel] = None) -> TransferResult:
        """Copies `guest_path` to a local path or into a binary file object
        (written as the data comes; on failure it holds a prefix)."""
        if _is_file(dest) or hasattr(dest, "write"):
            with self.open_download(guest_path, verify_sha256=verify_sha256, progress=progress, timeout=timeout,
                                    cancel=cancel) as t:
                buf = bytearray(1 << 20)
                while True:
                    n = t.readinto(buf)
                    if not n:
                        break
                    dest.write(bytes(buf[:n]))  # type: ignore[union-attr]
                r = t.finish()
                self._raise_callback_errors(t._keep[1])
                return r
        return self._path_transfer(False, os.fspath(dest), guest_path, None, verify_sha256,  # type: ignore
                                   progress, timeout, cancel)

    @staticmethod
    def _raise_callback_errors(errors: list) -> None:
        if errors:
            raise errors[0]

    def _path_transfer(self, upload: bool, local: str, guest: str, mode: Optional[int], verify_sha256: bool,
                       progress: Optional[ProgressFn], timeout: Optional[float],
                       cancel: Optional[Cancel]) -> TransferResult:
        L = self._L
        errors: list = []
        cb = progress_callback(progress, errors)
        size = ctypes.c_uint64()
        sha = ctypes.create_string_buffer(65)
        lb, gb = local.encode(), guest.encode()
        if not L.has("qtx_agent_upload_file"):  # a 0.1 library
            def go_old(_t: Optional[int]) -> None:
                err = _lib.Error()
                if upload:
                    check(L.qtx_agent_upload(self._h, lb, gb, mode or 0, cb, None, sha, ctypes.byref(err)), err)
                else:
                    check(L.qtx_agent_download(self._h, gb, lb, cb, None, sha, ctypes.byref(err)), err)
            self._guard.run(go_old, cancel)
            self._raise_callback_errors(errors)
            return TransferResult(os.path.getsize(local), sha.value.decode())

        def go(token: Optional[int]) -> None:
            o = self._transfer_options(timeout, None, mode, verify_sha256,
                                       os.path.getsize(local) if upload else 0, cb)
            o.cancel = token
            err = _lib.Error()
            if upload:
                rc = L.qtx_agent_upload_file(self._h, lb, gb, ctypes.byref(o), ctypes.byref(size), sha,
                                             ctypes.byref(err))
            else:
                rc = L.qtx_agent_download_file(self._h, gb, lb, ctypes.byref(o), ctypes.byref(size), sha,
                                               ctypes.byref(err))
            check(rc, err)
        self._guard.run(go, cancel)
        self._raise_callback_errors(errors)
        return TransferResult(size.value, sha.value.decode())

    # --- telemetry and events ----------------------------------------------

    def telemetry(self, maxsize: int = 64) -> Subscription:
        """An iterator of telemetry samples (TelemetrySample dicts) from now
        on. At most `maxsize` wait: a slow reader loses the oldest, counted
        in .dropped. Close it (or use `with`) when done."""
        s = Subscription(self._telemetry_subs, self._subs_lock, maxsize)
        with self._subs_lock:
            self._telemetry_subs.add(s)
        return s

    def events(self, maxsize: int = 64) -> Subscription:
        """Every event the agent pushes (qtx.agent.v1.Event dicts: telemetry,
        freeze_state, telemetry_dropped, agent_started), as telemetry()."""
        s = Subscription(self._event_subs, self._subs_lock, maxsize)
        with self._subs_lock:
            self._event_subs.add(s)
        return s

    # --- life -------------------------------------------------------------

    def close(self) -> None:
        """Ends running calls, closes open Process and Transfer handles and
        subscriptions, and frees the agent. Idempotent."""
        not_in_callback("Agent.close()")
        for handle in list(self._handles):
            handle.close()
        if self._guard.close():
            self._L.qtx_agent_free(self._h)  # once it returns, no callback of this agent runs
            self._callbacks = ()
        with self._subs_lock:
            subs = list(self._telemetry_subs) + list(self._event_subs)
        for s in subs:
            s.close()
        self._manager._forget(self)

    @property
    def closed(self) -> bool:
        return self._guard.closed

    def __enter__(self) -> "Agent":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<qtx.Agent %s %s>" % (self.socket_path, self.state)
