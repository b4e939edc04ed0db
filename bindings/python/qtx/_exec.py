"""exec: results, and running commands as handles (qtx_exec)."""

from __future__ import annotations

import ctypes
import io
import json
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple

from . import _lib
from ._core import Cancel, Guard, check, close_later, join_to_the_end, not_in_callback
from .errors import QtxError

STDOUT = 1
STDERR = 2
_CHUNK = 64 * 1024


@dataclass
class ExecResult:
    """The end of a command. exit_code is None when a signal killed it
    (then `signal` is set). stdout/stderr hold the output for Agent.exec();
    for a Process they are empty (its output was read as it came)."""

    exit_code: Optional[int]
    signal: Optional[int]
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    truncated: bool = False
    duration: float = 0.0  # seconds, as the agent measured
    pid: int = 0
    raw: Dict[str, Any] = field(default_factory=dict)  # the ExecResult JSON

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @classmethod
    def from_json(cls, raw: Dict[str, Any], stdout: bytes = b"", stderr: bytes = b"") -> "ExecResult":
        signal = int(raw["signal"]) if "signal" in raw else None
        return cls(exit_code=None if signal is not None else int(raw.get("exit_code", 0)), signal=signal,
                   stdout=stdout, stderr=stderr, timed_out=bool(raw.get("timed_out", False)),
                   truncated=bool(raw.get("truncated", False)),
                   duration=int(raw.get("duration_ms", 0)) / 1000.0, pid=int(raw.get("pid", 0)), raw=raw)


def feed(write: Any, close: Any, source: BinaryIO, errors: List[BaseException]) -> None:
    """Copies `source` into write(bytes) until EOF, then close(). Runs on a
    thread of its own; an error of the call (it ended) stops it quietly, an
    error reading `source` is kept in `errors`."""
    try:
        while True:
            data = source.read(_CHUNK)
            if not data:
                break
            write(data)
        close()
    except QtxError:
        pass  # the command or transfer ended: its own outcome says why
    except BaseException as e:  # the source failed
        errors.append(e)


class _StreamReader(io.RawIOBase):
    """A readable binary stream over one output stream of a Process."""

    def __init__(self, process: "Process", stream: int) -> None:
        super().__init__()
        self._p = process
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._p._read_into(self._stream, b)


class Process:
    """A command running in the guest (Agent.start). Its output is read
    with .stdout / .stderr (binary readable streams) or iterated as
    (stream, bytes) chunks with chunks(); reading is flow-controlled: the
    agent sends no more than what was read plus one window (stdout and
    stderr share it, so read both, as with pipes). Close it (or use `with`)
    before its agent closes: close() kills a command that still runs."""

    def __init__(self, agent: Any, handle: int, token: Optional[Cancel], own_token: bool,
                 source: Optional[BinaryIO]) -> None:
        self._L = _lib.lib()
        self._agent = agent
        self._h = handle
        self._token = token  # the exec's token: kept alive for as long as the handle
        self._own_token = own_token
        self._guard = Guard("process")
        self._close_lock = threading.Lock()  # a second close() waits for the first to finish
        self.stdout = io.BufferedReader(_StreamReader(self, STDOUT))
        self.stderr = io.BufferedReader(_StreamReader(self, STDERR))
        self._feeder: Optional[threading.Thread] = None
        self._feed_errors: List[BaseException] = []
        if source is not None:
            self._feeder = threading.Thread(target=feed, args=(self.write, self.close_stdin, source,
                                                               self._feed_errors), name="qtx-exec-stdin",
                                            daemon=True)
            self._feeder.start()

    def _call(self, fn: Any) -> Any:
        return self._guard.run(fn, self._token)

    def write(self, data: bytes) -> None:
        """Queues stdin bytes (Agent.start(stdin=PIPE)); blocks while the
        handle's buffer (256 KiB) is full, i.e. while the program does not read."""
        buf = bytes(data)

        def go(_t: Optional[int]) -> None:
            err = _lib.Error()
            check(self._L.qtx_exec_write_stdin(self._h, buf, len(buf), ctypes.byref(err)), err)
        self._call(go)

    def close_stdin(self) -> None:
        """Ends the program's stdin once what was queued has been sent."""
        def go(_t: Optional[int]) -> None:
            err = _lib.Error()
            check(self._L.qtx_exec_close_stdin(self._h, ctypes.byref(err)), err)
        self._call(go)

    def _read_into(self, stream: int, b: Any) -> int:
        view = memoryview(b).cast("B")
        cap = len(view)
        buf = (ctypes.c_char * cap).from_buffer(view)
        n = ctypes.c_size_t()

        def go(_t: Optional[int]) -> int:
            err = _lib.Error()
            check(self._L.qtx_exec_read(self._h, stream, buf, cap, ctypes.byref(n), ctypes.byref(err)), err)
            return n.value
        return self._call(go)

    def read(self, stream: int = STDOUT, size: int = _CHUNK) -> bytes:
        """Up to `size` bytes of `stream` as soon as some are there; b"" at
        the end of the stream. A failed command raises its error once what
        came before was read."""
        b = bytearray(size)
        n = self._read_into(stream, b)
        return bytes(b[:n])

    def chunks(self, size: int = _CHUNK) -> Iterator[Tuple[int, bytes]]:
        """Yields (STDOUT or STDERR, bytes) in arrival order per stream until
        both end. Two threads read the streams into a queue of 8 chunks: a
        slow consumer stops them, and the agent's window then holds the
        command back (nothing is dropped). A failed command raises its error
        after the chunks that came before it."""
        q: "queue.Queue[Tuple[int, Any]]" = queue.Queue(maxsize=8)

        def pump(stream: int) -> None:
            try:
                while True:
                    data = self.read(stream, size)
                    if not data:
                        break
                    q.put((stream, data))
                q.put((stream, None))
            except BaseException as e:
                q.put((0, e))

        threads = [threading.Thread(target=pump, args=(s,), daemon=True) for s in (STDOUT, STDERR)]
        for t in threads:
            t.start()
        ended = 0
        failure: Optional[BaseException] = None
        try:
            while ended < 2:
                stream, item = q.get()
                if stream == 0:
                    ended += 1
                    failure = failure or item
                elif item is None:
                    ended += 1
                else:
                    yield stream, item
        finally:
            if ended < 2:  # the consumer stopped early: end the command so the readers end
                self.cancel()
                while ended < 2:
                    stream, item = q.get()
                    if stream == 0 or item is None:
                        ended += 1
            for t in threads:
                t.join()
        if failure is not None:
            raise failure

    def wait(self) -> ExecResult:
        """Blocks until the command ends; output not read is discarded."""
        out = ctypes.c_void_p()

        def go(_t: Optional[int]) -> str:
            err = _lib.Error()
            check(self._L.qtx_exec_wait(self._h, ctypes.byref(out), ctypes.byref(err)), err)
            return self._L.take_string(out)
        raw = self._call(go)
        if self._feeder is not None:
            self._feeder.join()
            if self._feed_errors:
                raise self._feed_errors[0]
        return ExecResult.from_json(json.loads(raw))

    def cancel(self) -> None:
        """Kills the command; its calls end with CancelledError."""
        if not self._guard.closed:
            self._L.qtx_exec_cancel(self._h)

    def close(self) -> None:
        """Kills the command if it still runs and frees the handle."""
        not_in_callback("Process.close()")
        with self._close_lock:
            if self._guard.close(lambda: self._L.qtx_exec_cancel(self._h)):
                if self._feeder is not None:  # its writes fail now (ClosedError): it ends
                    join_to_the_end(self._feeder)
                self._L.qtx_exec_free(self._h)  # waits for the command's end; no callback after
                self._agent._forget(self)
                if self._own_token and self._token is not None:
                    self._token.close()

    def __del__(self) -> None:
        guard = getattr(self, "_guard", None)  # None: __init__ did not get that far
        if guard is not None and not guard.closed:
            close_later(self)

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
