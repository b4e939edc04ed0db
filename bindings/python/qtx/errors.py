"""Exceptions: one class per qtx_error_kind, all under QtxError.

The kinds and their numbers are qtx/host.h's qtx_error_kind; `retryable`
mirrors the host library's table (host/src/error_table.h): the same call
may succeed later, unchanged, for disconnected, timeout and busy only.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

# kind number -> (name, retryable), as error_table.h's kKinds.
KINDS: Dict[int, tuple] = {
    1: ("disconnected", True),
    2: ("timeout", True),
    3: ("cancelled", False),
    4: ("denied", False),
    5: ("unsupported", False),
    6: ("invalid_argument", False),
    7: ("not_found", False),
    8: ("already_exists", False),
    9: ("busy", True),
    10: ("failed_precondition", False),
    11: ("guest_failed", False),
    12: ("protocol", False),
    13: ("local", False),
    14: ("closed", False),
}


class QtxError(Exception):
    """A failed call.

    kind: the error kind's stable name ("timeout", "denied", ...).
    code: its qtx_error_kind number. guest_code: the agent's
    qtx.agent.v1.ErrorCode (0 when the failure is local). errno: the
    operating system's error number, or 0. retryable: whether the same call
    may succeed later unchanged (disconnected, timeout, busy).
    """

    code = 0

    def __init__(self, message: str, *, code: Optional[int] = None, guest_code: int = 0, os_errno: int = 0) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.guest_code = guest_code
        self.errno = os_errno

    @property
    def kind(self) -> str:
        return KINDS.get(self.code, ("unknown", False))[0]

    @property
    def retryable(self) -> bool:
        return KINDS.get(self.code, ("unknown", False))[1]

    def __str__(self) -> str:
        return "%s: %s" % (self.kind, self.message)


class DisconnectedError(QtxError, ConnectionError):
    """Not ready, or the connection dropped: retry once ready."""
    code = 1


class DeadlineError(QtxError, TimeoutError):
    """The deadline passed (a builtin TimeoutError too)."""
    code = 2


class CancelledError(QtxError):
    """The call was cancelled (a Cancel token, cancel(), a cancelled task)."""
    code = 3


class DeniedError(QtxError):
    """The guest's policy forbids it: do not retry."""
    code = 4


class UnsupportedError(QtxError):
    code = 5


class InvalidArgumentError(QtxError, ValueError):
    code = 6


class NotFoundError(QtxError):
    code = 7


class AlreadyExistsError(QtxError):
    """Also: the socket already has an owner."""
    code = 8


class BusyError(QtxError):
    """Back off and retry."""
    code = 9


class FailedPreconditionError(QtxError):
    code = 10


class GuestFailedError(QtxError):
    """The guest failed for a reason that says nothing to the caller (I/O, internal)."""
    code = 11


class ProtocolError(QtxError):
    code = 12


class LocalError(QtxError):
    code = 13


class ClosedError(QtxError):
    """The agent, manager or stream was closed."""
    code = 14


_BY_CODE: Dict[int, Type[QtxError]] = {
    c.code: c
    for c in (DisconnectedError, DeadlineError, CancelledError, DeniedError, UnsupportedError, InvalidArgumentError,
              NotFoundError, AlreadyExistsError, BusyError, FailedPreconditionError, GuestFailedError, ProtocolError,
              LocalError, ClosedError)
}


def error_class(code: int) -> Type[QtxError]:
    """The exception class of a qtx_error_kind number (QtxError if unknown)."""
    return _BY_CODE.get(code, QtxError)


def make_error(code: int, message: str, guest_code: int = 0, os_errno: int = 0) -> QtxError:
    return error_class(code)(message, code=code, guest_code=guest_code, os_errno=os_errno)


def from_c(code: int, err) -> QtxError:
    """The exception for a failed C call: its return code and qtx_error."""
    message = err.message.decode("utf-8", "replace") if err is not None else ""
    if err is not None and err.kind:
        code = err.kind
    return make_error(code, message or "error %d" % code, err.guest_code if err is not None else 0,
                      err.os_errno if err is not None else 0)
