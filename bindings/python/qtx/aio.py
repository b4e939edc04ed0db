"""asyncio flavour: AsyncAgent(agent) wraps an Agent with awaitable calls.

Single-answer requests (call() and the typed helpers) go through
qtx_agent_request_json_async: no thread is held while they are in flight;
their done callback runs on the manager's I/O thread and hands the answer
to the task's event loop with call_soon_threadsafe. Cancelling the awaiting
task cancels the call (qtx_agent_cancel_call). Streamed calls (exec,
upload, download, wait_ready) run the blocking API in the loop's default
executor with a Cancel token that a cancelled task fires.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import functools
import itertools
import json
import threading
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Tuple, TypeVar

from . import _lib
from ._agent import Agent
from ._core import Cancel, Subscription, need, timeout_ms
from ._exec import ExecResult
from ._transfer import TransferResult
from .errors import ClosedError, QtxError, from_c

T = TypeVar("T")

# Calls in flight: key (the C callback's user pointer) -> (loop, future).
_pending: Dict[int, Tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]] = {}
_pending_lock = threading.Lock()
_keys = itertools.count(1)


def _settle(fut: "asyncio.Future[Any]", error: Optional[QtxError], text: Optional[str]) -> None:
    if fut.done():  # the task was cancelled meanwhile
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(json.loads(text or "{}"))


def _on_done(user: Optional[int], response_json: Optional[bytes], err: Any) -> None:
    # The I/O thread (or the submitting thread when the manager is gone).
    # Both arguments are valid only now: copied before hopping to the loop.
    with _pending_lock:
        entry = _pending.pop(user or 0, None)
    if entry is None:
        return
    loop, fut = entry
    if response_json is not None:
        error, text = None, response_json.decode("utf-8")
    else:
        e = err.contents if err else None
        error, text = from_c(e.kind if e is not None else 13, e), None
    try:
        loop.call_soon_threadsafe(_settle, fut, error, text)
    except RuntimeError:  # the loop was closed: nobody waits any more
        pass


_ON_DONE = _lib.RESPONSE_FN(_on_done)  # module lifetime: every call may still reach it


class AsyncAgent:
    """Awaitable calls on an Agent (which keeps its own life: close the Agent
    or its Manager as usual)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._L = _lib.lib()

    async def call(self, request: Dict[str, Any], *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Agent.call without blocking a thread."""
        fn = need("qtx_agent_request_json_async")
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[Any]" = loop.create_future()
        key = next(_keys)
        with _pending_lock:
            _pending[key] = (loop, fut)
        o = _lib.init(_lib.CallOptions())
        o.timeout_ms = timeout_ms(timeout)
        call_id = ctypes.c_uint64()
        err = _lib.Error()
        guard = self.agent._guard
        guard.enter()
        try:
            rc = fn(self.agent._h, json.dumps(request).encode(), ctypes.byref(o), _ON_DONE, key,
                    ctypes.byref(call_id), ctypes.byref(err))
        finally:
            guard.leave()
        if rc != 0:  # refused before submission: `done` never runs
            with _pending_lock:
                _pending.pop(key, None)
            raise from_c(rc, err)
        try:
            return await fut
        except asyncio.CancelledError:
            if not guard.closed:
                self._L.qtx_agent_cancel_call(self.agent._h, call_id.value)
            raise

    async def request(self, kind: str, body: Optional[Dict[str, Any]] = None, **kw: Any) -> Dict[str, Any]:
        return (await self.call({kind: body or {}}, **kw)).get(kind, {})

    async def ping(self, payload: bytes = b"", **kw: Any) -> bytes:
        r = await self.request("ping", {"payload": base64.b64encode(payload).decode()} if payload else {}, **kw)
        return base64.b64decode(r.get("payload", ""))

    async def info(self, **kw: Any) -> Dict[str, Any]:
        return await self.request("info", **kw)

    async def hostname(self, **kw: Any) -> str:
        return (await self.request("hostname_get", **kw)).get("hostname", "")

    async def time(self, **kw: Any) -> float:
        return int((await self.request("time_get", **kw)).get("unix_time_ns", 0)) / 1e9

    async def stat(self, path: str, follow_symlinks: bool = False, **kw: Any) -> Dict[str, Any]:
        return await self.request("file_stat", {"path": path, "follow_symlinks": follow_symlinks}, **kw)

    async def listdir(self, path: str, **kw: Any) -> List[Dict[str, Any]]:
        return (await self.request("file_list", {"path": path}, **kw)).get("entries", [])

    async def _in_executor(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """fn(*args, cancel=token, **kw) on an executor thread; a cancelled
        task fires the token and waits for the call to end."""
        token = Cancel()
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, functools.partial(fn, *args, cancel=token, **kw))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            token.fire()
            try:
                await fut
            except BaseException:
                pass
            raise

    async def wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.agent.wait_ready, timeout)

    async def exec(self, argv: List[str], **kw: Any) -> ExecResult:
        """Agent.exec on an executor thread."""
        return await self._in_executor(self.agent.exec, argv, **kw)

    async def upload(self, source: Any, guest_path: str, **kw: Any) -> TransferResult:
        return await self._in_executor(self.agent.upload, source, guest_path, **kw)

    async def download(self, guest_path: str, dest: Any, **kw: Any) -> TransferResult:
        return await self._in_executor(self.agent.download, guest_path, dest, **kw)

    async def telemetry(self, maxsize: int = 64) -> AsyncIterator[Dict[str, Any]]:
        """Telemetry samples as an async iterator (Agent.telemetry's queue,
        read from an executor thread)."""
        loop = asyncio.get_running_loop()
        with self.agent.telemetry(maxsize) as sub:
            while True:
                try:
                    yield await loop.run_in_executor(None, sub.get)
                except ClosedError:
                    return


def wrap(agent: Agent) -> AsyncAgent:
    return AsyncAgent(agent)


__all__ = ["AsyncAgent", "wrap", "Subscription"]
