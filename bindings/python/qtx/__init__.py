"""qtx: Python bindings for libqtx-host, the host side of the qtx guest agent.

    import qtx
    with qtx.Manager() as m:
        agent = m.add("/run/vm1/qtx.sock")
        agent.wait_ready(timeout=30)
        print(agent.info()["hostname"])
        r = agent.exec(["/bin/uname", "-r"], timeout=10)

The library is loaded from $QTX_HOST_LIBRARY, else "libqtx-host.so.0"
through the dynamic loader. qtx.vm provisions a VM for the agent. See
docs/python.md.
"""

from . import _lib
from ._agent import PIPE, Agent, Manager
from ._core import Cancel, Subscription
from ._exec import STDERR, STDOUT, ExecResult, Process
from ._transfer import Transfer, TransferResult
from . import vm  # provisioning helpers: overlay, cloud-init seed, channel wiring, wait for the agent
from .errors import (AlreadyExistsError, BusyError, CancelledError, ClosedError, DeadlineError, DeniedError,
                     DisconnectedError, FailedPreconditionError, GuestFailedError, InvalidArgumentError, LocalError,
                     NotFoundError, ProtocolError, QtxError, UnsupportedError)

_lib.lib()  # load now: a missing library or another major fails the import

__version__ = "0.2.0"


def library_version() -> str:
    """The loaded libqtx-host's version, "MAJOR.MINOR.PATCH"."""
    return "%d.%d.%d" % _lib.lib().version


def library_path() -> str:
    return _lib.lib().path


def set_interruptible(on: bool) -> None:
    """Whether blocking calls from the main thread run on a helper thread so
    that Ctrl-C cancels them (the default, True; docs/python.md)."""
    from . import _core
    _core.interruptible = bool(on)


__all__ = [
    "Manager", "Agent", "Cancel", "Subscription", "Process", "ExecResult", "Transfer", "TransferResult", "PIPE",
    "STDOUT", "STDERR", "QtxError", "DisconnectedError", "DeadlineError", "CancelledError", "DeniedError",
    "UnsupportedError", "InvalidArgumentError", "NotFoundError", "AlreadyExistsError", "BusyError",
    "FailedPreconditionError", "GuestFailedError", "ProtocolError", "LocalError", "ClosedError", "library_version",
    "library_path", "set_interruptible", "vm",
]
