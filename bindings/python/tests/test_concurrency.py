"""Threads, asyncio, Ctrl-C, and no leaks."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import signal
import threading
import time
import tracemalloc

import pytest

import qtx
import qtx.aio
from conftest import DEFAULT_CONFIG, connect, stats_settled



def test_many_threads_share_one_agent(manager, start_agent):
    # 16 execs at once: above the agent's default limit of 8 (BusyError).
    agent = connect(manager, start_agent(DEFAULT_CONFIG + "[limits]\nmax_concurrent_execs = 16\n"))
    errors = []

    def worker(i: int) -> None:
        try:
            for j in range(40):
                payload = b"%d:%d" % (i, j)
                if agent.ping(payload) != payload:
                    errors.append((i, j))
            r = agent.exec(["/bin/echo", str(i)])
            if r.stdout != b"%d\n" % i:
                errors.append((i, r))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_thousand_async_calls_in_flight(agent):
    a = qtx.aio.AsyncAgent(agent)

    async def main():
        payloads = [b"call %d" % i for i in range(1000)]
        # Every call is submitted before the loop runs any answer's callback.
        results = await asyncio.gather(*(a.ping(p, timeout=60) for p in payloads))
        return payloads, results
    payloads, results = asyncio.run(main())
    assert results == payloads
    s = stats_settled(agent)
    assert int(s["calls_in_flight"]) == 0
    assert int(s["calls_ended"][0]) >= 1000


def test_async_errors_timeouts_and_cancellation(agent, agent_proc):
    a = qtx.aio.AsyncAgent(agent)

    async def main():
        assert await a.hostname() == agent.hostname()
        with pytest.raises(qtx.NotFoundError):
            await a.stat("/no/such/file")
        with pytest.raises(qtx.InvalidArgumentError):
            await a.call({"no_such_request": {}})
        # An executor call ended by the task's cancellation: the exec is killed.
        marker = os.path.join(agent_proc.files, "started")
        task = asyncio.ensure_future(a.exec(["/bin/sh", "-c", "touch %s; exec sleep 30" % marker]))
        while not os.path.exists(marker):
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(qtx.DeadlineError):
            await a.exec(["/bin/sleep", "30"], timeout=0.2)
        r = await a.exec(["/bin/echo", "hi"])
        assert r.stdout == b"hi\n"
    asyncio.run(main())
    assert int(stats_settled(agent)["calls_in_flight"]) == 0


def test_cancelling_an_awaiting_task_cancels_the_async_call(agent, agent_proc):
    # A stopped agent answers nothing: only the cancellation ends the call.
    a = qtx.aio.AsyncAgent(agent)
    agent_proc.proc.send_signal(signal.SIGSTOP)
    try:
        async def main():
            task = asyncio.ensure_future(a.call({"ping": {}}))
            deadline = time.monotonic() + 10  # the I/O thread counts the submitted call
            while int(agent.stats()["calls_in_flight"]) != 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            assert int(agent.stats()["calls_in_flight"]) == 1 and not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        asyncio.run(main())
        s = stats_settled(agent)
    finally:
        agent_proc.proc.send_signal(signal.SIGCONT)
    assert int(s["calls_in_flight"]) == 0
    assert int(s["calls_ended"][3]) == 1  # ended as cancelled (kind 3), by qtx_agent_cancel_call
    deadline = time.monotonic() + 10  # the done callback runs just after the call is counted ended
    while qtx.aio._pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert qtx.aio._pending == {}


def test_ctrl_c_ends_a_blocking_call_in_the_main_thread(agent, agent_proc):
    assert threading.current_thread() is threading.main_thread()
    marker = os.path.join(agent_proc.files, "started")

    def interrupt() -> None:
        deadline = time.monotonic() + 30
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.005)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
    t = threading.Thread(target=interrupt)
    t.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        agent.exec(["/bin/sh", "-c", "touch %s; exec sleep 30" % marker], timeout=60)
    t.join()
    assert time.monotonic() - start < 25  # not the command's 30 s: it was cancelled
    s = stats_settled(agent)
    assert int(s["calls_in_flight"]) == 0
    assert int(s["calls_ended"][3]) == 1  # ended as cancelled (kind 3)
    assert agent.ping(b"after") == b"after"


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def _c_heap_in_use() -> int:
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _Mallinfo2
    return libc.mallinfo2().uordblks + libc.mallinfo2().hblkhd


def test_no_leaks_over_ten_thousand_calls(agent):
    """Python side: tracemalloc over 10,000 calls (pings and a typed
    request). A leak of one object per call, the smallest being 16-byte
    ints... in practice >= 28 bytes, would grow by >= 280 KB; the bound,
    64 KiB, leaves room for caches that fill once (interned strings,
    free lists, the json module's memo) and catches any per-call leak.
    C side: malloc's bytes in use (mallinfo2) over 10,000 more calls, with
    no tracing (it allocates itself): a response string not freed (>= 40
    bytes with malloc's header) would be >= 400 KB; bound 256 KiB. And the
    library's own count: calls_in_flight back to 0, every call ended ok."""
    def calls(n: int) -> None:
        for i in range(n):
            if i % 2:
                agent.ping(b"leak?")
            else:
                agent.hostname()
    calls(1000)  # warm-up: caches, the helper thread, the json machinery
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    calls(10000)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    python_growth = current - before
    tracemalloc.stop()

    gc.collect()
    heap_before = _c_heap_in_use()
    calls(10000)
    gc.collect()
    c_growth = _c_heap_in_use() - heap_before
    print("python growth %d B, C heap growth %d B over 10,000 calls each" % (python_growth, c_growth))
    assert peak > 0  # the calls were traced
    assert python_growth < 64 * 1024
    assert c_growth < 256 * 1024
    s = stats_settled(agent)
    assert int(s["calls_in_flight"]) == 0
    assert int(s["calls_ended"][0]) >= 21000 and sum(int(x) for x in s["calls_ended"][1:]) == 0
