"""File transfers as handles (qtx_transfer): an upload fed by the caller,
a download drained by the caller."""

from __future__ import annotations

import ctypes
import io
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import _lib
import threading

from ._core import Cancel, Guard, callback_scope, check, close_later, not_in_callback

ProgressFn = Callable[[int, int], None]  # (bytes so far, total or 0 when unknown), on the I/O thread


@dataclass
class TransferResult:
    bytes: int  # the size moved
    sha256: str  # hex digest checked on both sides; "" when verify_sha256=False


def progress_callback(progress: Optional[ProgressFn], errors: list) -> Any:
    """A C progress callback calling `progress`; its exceptions are kept in
    `errors` (none may escape into the I/O thread). NULL for None."""
    if progress is None:
        return _lib.PROGRESS_FN()

    def on_progress(_user: Any, done: int, total: int) -> None:
        try:
            with callback_scope():
                progress(done, total)
        except BaseException as e:
            errors.append(e)
    return _lib.PROGRESS_FN(on_progress)


class Transfer(io.RawIOBase):
    """An upload (writable: write(), then finish()) or a download
    (readable: read() until b"", then finish()) of one guest file. The
    handle buffers at most 1 MiB; writes block while it is full and the
    agent's credit holds the download back while nothing reads. Close it
    (or use `with`) before its agent closes: close() abandons an unfinished
    transfer (an upload then leaves nothing behind in the guest)."""

    def __init__(self, agent: Any, handle: int, upload: bool, token: Optional[Cancel], own_token: bool,
                 keep: Any) -> None:
        super().__init__()
        self._L = _lib.lib()
        self._agent = agent
        self._h = handle
        self._upload = upload
        self._token = token
        self._own_token = own_token
        self._keep = keep  # the options' callback: alive as long as the handle
        self._guard = Guard("transfer")
        self._close_lock = threading.Lock()  # a second close() waits for the first to finish
        self.result: Optional[TransferResult] = None

    def readable(self) -> bool:
        return not self._upload

    def writable(self) -> bool:
        return self._upload

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        cap = len(view)
        buf = (ctypes.c_char * cap).from_buffer(view)
        n = ctypes.c_size_t()

        def go(_t: Optional[int]) -> int:
            err = _lib.Error()
            check(self._L.qtx_transfer_read(self._h, buf, cap, ctypes.byref(n), ctypes.byref(err)), err)
            return n.value
        return self._guard.run(go, self._token)

    def write(self, data: Any) -> int:
        buf = bytes(data)

        def go(_t: Optional[int]) -> int:
            err = _lib.Error()
            check(self._L.qtx_transfer_write(self._h, buf, len(buf), ctypes.byref(err)), err)
            return len(buf)
        return self._guard.run(go, self._token)

    def finish(self) -> TransferResult:
        """Upload: ends the data. Both: waits for the outcome (the sha256
        compared), raises the transfer's error if it failed."""
        if self.result is not None:
            return self.result
        size = ctypes.c_uint64()
        sha = ctypes.create_string_buffer(65)

        def go(_t: Optional[int]) -> None:
            err = _lib.Error()
            if self._upload:
                check(self._L.qtx_transfer_close_write(self._h, ctypes.byref(err)), err)
            check(self._L.qtx_transfer_wait(self._h, ctypes.byref(size), sha, ctypes.byref(err)), err)
        self._guard.run(go, self._token)
        self.result = TransferResult(size.value, sha.value.decode())
        return self.result

    def cancel(self) -> None:
        if not self._guard.closed:
            self._L.qtx_transfer_cancel(self._h)

    def close(self) -> None:
        """Abandons the transfer if it did not finish and frees the handle."""
        not_in_callback("Transfer.close()")
        with self._close_lock:
            if self._guard.close(lambda: self._L.qtx_transfer_cancel(self._h)):
                self._L.qtx_transfer_free(self._h)
                self._agent._forget(self)
                if self._own_token and self._token is not None:
                    self._token.close()
        super().close()

    def __del__(self) -> None:  # instead of IOBase's, which would close() on any thread
        guard = getattr(self, "_guard", None)  # None: __init__ did not get that far
        if guard is not None and not guard.closed:
            close_later(self)

    def __enter__(self) -> "Transfer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
