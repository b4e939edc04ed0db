"""Cancellation tokens, interruptible blocking calls, handle guards and the
bounded queues that carry callbacks' data to Python threads."""

from __future__ import annotations

import collections
import json
import math
import queue
import threading
from typing import Any, Callable, Deque, Dict, Iterator, Optional, Set, TypeVar

from . import _lib
from .errors import ClosedError, DeadlineError, UnsupportedError, from_c

T = TypeVar("T")


def need(name: str) -> Any:
    """The C function `name`, or UnsupportedError when this library lacks it."""
    fn = getattr(_lib.lib(), name)
    if fn is None:
        L = _lib.lib()
        raise UnsupportedError("%s (version %d.%d.%d) has no %s" % ((L.path,) + L.version + (name,)), code=5)
    return fn


def timeout_ms(timeout: Optional[float]) -> int:
    """Seconds (float) to the C API's milliseconds; None: no deadline (0).
    A positive timeout below 1 ms becomes 1 ms; longer than the C field
    holds (49 days) becomes the longest it holds."""
    if timeout is None:
        return 0
    if timeout <= 0 or math.isnan(timeout):
        raise ValueError("timeout must be a positive number of seconds or None, not %r" % (timeout,))
    return max(1, min(0xFFFFFFFF, int(math.ceil(timeout * 1000.0))))


def check(rc: int, err: _lib.Error) -> None:
    if rc != 0:
        raise from_c(rc, err)


class Cancel:
    """A cancellation token (qtx_cancel): fire() ends every call given it,
    and every later one, with CancelledError; the agent is told to stop
    them (an exec is killed, a transfer abandoned). Any thread may fire it;
    firing is idempotent. Pass it as `cancel=` to any blocking call."""

    def __init__(self) -> None:
        self._L = _lib.lib()
        self._h: Optional[int] = need("qtx_cancel_new")()

    @property
    def handle(self) -> Optional[int]:
        return self._h

    def fire(self) -> None:
        if self._h:
            self._L.qtx_cancel_fire(self._h)

    @property
    def fired(self) -> bool:
        return bool(self._h) and self._L.qtx_cancel_fired(self._h) == 1

    def close(self) -> None:
        """Frees the C token. Only once no call using it runs: every call
        holds a reference to its token, so dropping yours is always safe."""
        h, self._h = self._h, None
        if h:
            self._L.qtx_cancel_free(h)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# --- Blocking calls from the main thread ------------------------------------
#
# A ctypes call releases the GIL but Python runs signal handlers only between
# bytecodes of the main thread, so Ctrl-C would wait for a blocking C call to
# end by itself. From the main thread, calls therefore run on one helper
# thread while the main thread waits on an Event (an interruptible wait); on
# KeyboardInterrupt (or any exception raised by a signal handler) the call's
# token is fired, the C call ends with CANCELLED, and the exception is
# re-raised once it has. Other threads call the C function directly.

interruptible = True  # set to False to call directly from the main thread too


class _Runner:
    def __init__(self) -> None:
        self._work: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()
        t = threading.Thread(target=self._loop, name="qtx-main-calls", daemon=True)
        t.start()

    def _loop(self) -> None:
        while True:
            self._work.get()()

    def submit(self, fn: Callable[[], None]) -> None:
        self._work.put(fn)


_runner: Optional[_Runner] = None
_runner_lock = threading.Lock()


def _wait_to_the_end(done: threading.Event) -> None:
    while True:
        try:
            done.wait()
            return
        except BaseException:  # a second Ctrl-C while the call winds down
            continue


def join_to_the_end(thread: threading.Thread) -> None:
    """Thread.join that a Ctrl-C does not cut short (the thread uses a C
    handle about to be freed); the interrupt is re-raised afterwards."""
    interrupted: Optional[BaseException] = None
    while True:
        try:
            thread.join()
            break
        except BaseException as e:
            interrupted = interrupted or e
    if interrupted is not None:
        raise interrupted


# The manager's I/O thread marks itself while it runs a callback of ours:
# closing a handle from there would wait for the I/O thread itself.
_in_callback = threading.local()


def in_callback() -> bool:
    return getattr(_in_callback, "depth", 0) > 0


class callback_scope:
    """`with callback_scope():` around the Python part of a C callback."""

    def __enter__(self) -> None:
        _in_callback.depth = getattr(_in_callback, "depth", 0) + 1

    def __exit__(self, *exc: Any) -> None:
        _in_callback.depth -= 1


def not_in_callback(what: str) -> None:
    if in_callback():
        from .errors import LocalError
        raise LocalError("%s from a callback (on the I/O thread) would deadlock; do it from another thread" % what,
                         code=13)


def blocking(fn: Callable[[Optional[int]], T], cancel: Optional[Cancel]) -> T:
    """Runs fn(token_handle), a blocking C call, so that Ctrl-C in the main
    thread fires `cancel` and ends it."""
    global _runner
    token = cancel.handle if cancel is not None else None
    if not interruptible or cancel is None or threading.current_thread() is not threading.main_thread():
        return fn(token)
    with _runner_lock:
        if _runner is None:
            _runner = _Runner()
    box: Dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["r"] = fn(token)
        except BaseException as e:  # carried to the caller's thread
            box["e"] = e
        finally:
            done.set()

    try:
        _runner.submit(work)  # inside the try: once queued, the call is waited for
        done.wait()
    except BaseException:
        cancel.fire()
        _wait_to_the_end(done)
        raise
    if "e" in box:
        raise box["e"]
    return box["r"]


class Guard:
    """Keeps a C handle alive while calls use it. enter() fails with
    ClosedError once close() began; close() runs `interrupt` (which makes
    running calls end: fires their tokens, cancels the handle) and waits
    for them before the caller frees the handle. Tokens a call created for
    itself are registered here so that close() can fire them."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._cv = threading.Condition()
        self._busy = 0
        self._own_tokens: Set[Cancel] = set()
        self.closed = False

    def enter(self, own_token: Optional[Cancel] = None) -> None:
        with self._cv:
            if self.closed:
                raise ClosedError("the %s is closed" % self._what, code=14)
            self._busy += 1
            if own_token is not None:
                self._own_tokens.add(own_token)

    def leave(self, own_token: Optional[Cancel] = None) -> None:
        with self._cv:
            self._busy -= 1
            if own_token is not None:
                self._own_tokens.discard(own_token)
            if self._busy == 0:
                self._cv.notify_all()

    def close(self, interrupt: Optional[Callable[[], None]] = None) -> bool:
        """False when already closed. Otherwise fires the calls' own tokens,
        runs interrupt(), waits for every call to leave, and returns True."""
        with self._cv:
            if self.closed:
                return False
            self.closed = True
            tokens = list(self._own_tokens)
        for t in tokens:
            t.fire()
        if interrupt is not None:
            interrupt()
        with self._cv:
            while self._busy:
                self._cv.wait()
        return True

    def run(self, fn: Callable[[Optional[int]], T], cancel: Optional[Cancel]) -> T:
        """fn(token_handle) under this guard, with the caller's token, or a
        token of its own (so that close() and Ctrl-C can end the call)."""
        own = None
        if cancel is None and _lib.lib().has("qtx_cancel_new"):
            own = cancel = Cancel()
        self.enter(own)
        try:
            return blocking(fn, cancel)
        finally:
            self.leave(own)
            if own is not None:
                own.close()


class Subscription:
    """A bounded queue of what a C callback delivers, read as an iterator.

    The callback runs on the manager's I/O thread and must not block, so
    when the reader is slow and `maxsize` items wait, the OLDEST waiting item
    is dropped to make room for the new one (the freshest sample is the
    useful one) and `dropped` counts it. Iteration blocks for the next item
    and ends once the subscription (or its agent) is closed and what was
    queued has been read. Items are dicts (the JSON of the message)."""

    def __init__(self, owner: Set["Subscription"], lock: threading.Lock, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._owner = owner
        self._owner_lock = lock
        self._cv = threading.Condition()
        self._items: Deque[str] = collections.deque()
        self._maxsize = maxsize
        self._closed = False
        self.dropped = 0  # items dropped because the queue was full
        self.received = 0  # items delivered by the callback, dropped ones included

    def _push(self, raw: str) -> None:  # I/O thread: O(1), never blocks for long
        with self._cv:
            if self._closed:
                return
            self.received += 1
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(raw)
            self._cv.notify()

    def get(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The next item; DeadlineError after `timeout` seconds without one,
        ClosedError once closed and drained."""
        with self._cv:
            if not self._cv.wait_for(lambda: self._items or self._closed, timeout):
                raise DeadlineError("no item within %.3f s" % timeout, code=2)
            if not self._items:
                raise ClosedError("the subscription is closed", code=14)
            raw = self._items.popleft()
        return json.loads(raw)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return self

    def __next__(self) -> Dict[str, Any]:
        try:
            return self.get()
        except ClosedError:
            raise StopIteration from None

    def close(self) -> None:
        with self._owner_lock:
            self._owner.discard(self)
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --- Handles dropped without close() ------------------------------------------
#
# A Process or Transfer collected while open must still be freed (it holds
# a C handle and the token the C call points to), but the collector may run
# anywhere, the manager's I/O thread included, where freeing a handle is
# not allowed. Such handles are closed by this daemon thread instead.

_janitor: "Optional[queue.SimpleQueue[Any]]" = None
_janitor_lock = threading.Lock()


def close_later(handle: Any) -> None:
    """Closes `handle` (its close()) on the janitor thread."""
    global _janitor
    with _janitor_lock:
        if _janitor is None:
            _janitor = queue.SimpleQueue()
            q = _janitor

            def loop() -> None:
                while True:
                    h = q.get()
                    try:
                        h.close()
                    except Exception:
                        pass
                    del h
            threading.Thread(target=loop, name="qtx-janitor", daemon=True).start()
    _janitor.put(handle)
