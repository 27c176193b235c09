"""How an object that runs background tasks while it is open lets errors out: one rule for all of them.

Every object of hypernode used as ``async with`` that runs tasks meanwhile (``Node``, the replication
server, ``Swarm``, ``DHTNode``, ``LocalDiscovery``, ``Peering``, ``ProtocolStream``) runs them in
:func:`open_service_nursery` and releases what it holds with :func:`cleanup`. What comes out of its
``async with`` block:

- an exception raised in the body comes out unchanged: the same object, catchable as itself (not
  wrapped in an ``ExceptionGroup``), whatever the tasks were doing; a task that fails while the block is
  being left is logged;
- a task that fails ends the object: the body is cancelled and the task's exception comes out alone,
  unwrapped from any (nested) group; when several fail at once the first comes out and the others are
  logged;
- ``KeyboardInterrupt`` and ``SystemExit`` win over everything, and the cancellation of an enclosing
  scope is never absorbed (it comes out as the ``Cancelled`` it is, so that scope still ends);
- leaving the block cancels the tasks: they are services, they never end the block on their own.

Cleanup (closing files, sockets, feeds) runs shielded from cancellation, so it completes when an
enclosing scope is cancelled, and after the tasks have ended. Its failure is raised if the block ended
normally, and logged if an exception is already on its way out (which then comes out unchanged).

Both are async context managers, so they serve equally in a hand-written ``__aenter__`` (through a
``contextlib.AsyncExitStack``) and in an ``@asynccontextmanager`` function.

Such an object's whole open life is one ``@asynccontextmanager`` method, ``_lifetime``: open what it
holds, run its tasks in :func:`open_service_nursery`, ``yield``, and the cleanup after the ``yield``
runs in reverse order however the block ends. :class:`Service` is the one adapter that turns that
method into the object's ``async with``, and :func:`opener` makes the module's ``open_*`` function of a
class (``open_swarm = opener(Swarm)``): ``async with open_swarm(...) as swarm`` and
``async with Swarm(...) as swarm`` run the same ``_lifetime``, under the same rules.

:func:`open_task_nursery` is trio's nursery (it waits for its tasks) under the same rules for what comes
out: one exception, never a group. The node uses it to run one connection with ``nursery.start`` (the
session reported at the handshake) and catch why the connection failed as itself.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import ParamSpec, Self, TypeVar, cast

import trio

from hypernode.errors import HypernodeError

log = logging.getLogger(__name__)

__all__ = ["Service", "cleanup", "leaf", "open_service_nursery", "open_task_nursery", "opener",
           "run_cleanup"]


@contextlib.asynccontextmanager
async def open_service_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery for an object's background tasks, with the error rules of this module."""
    async with _open_nursery(cancel_at_end=True) as nursery:
        yield nursery


@contextlib.asynccontextmanager
async def open_task_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery that waits for its tasks when the body ends (as trio's does), with the error rules of
    this module: what comes out is one exception, never a group (the body's unchanged, else the first
    task's to fail). For a task run with ``nursery.start`` whose failure the caller handles."""
    async with _open_nursery(cancel_at_end=False) as nursery:
        yield nursery


@contextlib.asynccontextmanager
async def _open_nursery(*, cancel_at_end: bool) -> AsyncIterator[trio.Nursery]:
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as e:
                body_error = e
                raise
            finally:
                if cancel_at_end:
                    nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        chosen = _choose(group, body_error)
        for other in _leaves(group):
            if other is not chosen and not isinstance(other, trio.Cancelled):
                if isinstance(other, HypernodeError):  # an expected failure (a connection lost twice)
                    log.debug("a background task failed as well: %s", other)
                else:  # a bug: its traceback
                    log.error("a background task failed as well: %r", other, exc_info=other)
        _reraise(chosen)


def leaf(error: BaseException) -> BaseException:
    """The one exception that stands for ``error``: itself unless it is a group; for a group, by the
    precedence of this module (``KeyboardInterrupt``/``SystemExit``, then the first ``Exception``,
    then ``Cancelled``), searched through nested groups."""
    return _choose(error, None) if isinstance(error, BaseExceptionGroup) else error


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [x for e in error.exceptions for x in _leaves(e)]
    return [error]


def _choose(group: BaseExceptionGroup[BaseException], body_error: BaseException | None) -> BaseException:
    leaves = _leaves(group)
    for e in leaves:
        if not isinstance(e, Exception | trio.Cancelled):
            return e  # KeyboardInterrupt, SystemExit
    if body_error is not None and not isinstance(body_error, trio.Cancelled) and any(
            e is body_error for e in group.exceptions):
        return body_error  # as raised (a group the body raised stays that group)
    for e in leaves:
        if isinstance(e, Exception):
            return e
    if body_error is not None and any(e is body_error for e in leaves):
        return body_error
    return leaves[0]


def _reraise(error: BaseException) -> None:
    """Raise ``error`` from an ``except`` block without chaining it to what that block handles."""
    context = error.__context__
    try:
        raise error
    finally:
        error.__context__ = context
        del error, context


async def run_cleanup(close: Callable[[], Awaitable[object]], pending: BaseException | None) -> None:
    """Run ``close()`` shielded from cancellation. With ``pending`` (an exception already on its way
    out), a failure of ``close`` is logged instead of raised, so that ``pending`` comes out unchanged."""
    with trio.CancelScope(shield=True):
        if pending is None:
            await close()
            return
        try:
            await close()
        except Exception as e:  # noqa: BLE001 - the pending exception is the one the caller gets
            log.error("closing after %r failed too: %r", pending, e, exc_info=e)


@contextlib.asynccontextmanager
async def cleanup(close: Callable[[], Awaitable[object]]) -> AsyncIterator[None]:
    """``close()`` when the block ends, however it ends (see :func:`run_cleanup`)."""
    try:
        yield
    except BaseException as e:
        await run_cleanup(close, e)
        raise
    await run_cleanup(close, None)


class Service:
    """The ``async with`` of an object whose open life is its ``_lifetime()``, an
    ``@asynccontextmanager`` method (see the module's docstring). Entering opens it and gives the object
    itself; leaving ends that one ``_lifetime``, whatever comes out of it comes out of the block. An
    object is open once at a time (entering it while open is a ``RuntimeError``); it may be opened again
    after it closed, if its ``_lifetime`` allows."""

    _service_context: AbstractAsyncContextManager[None] | None = None

    def _lifetime(self) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError(f"{type(self).__name__} has no _lifetime")

    async def __aenter__(self) -> Self:
        if self._service_context is not None:
            raise RuntimeError(f"this {type(self).__name__} is open already")
        context = self._lifetime()
        self._service_context = context
        try:
            await context.__aenter__()
        except BaseException:
            self._service_context = None
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        context, self._service_context = self._service_context, None
        if context is None:
            raise RuntimeError(f"this {type(self).__name__} is not open")
        return await context.__aexit__(exc_type, exc, tb)


_P = ParamSpec("_P")
_S = TypeVar("_S", bound=Service)


def opener(cls: Callable[_P, _S]) -> Callable[_P, AbstractAsyncContextManager[_S]]:
    """The ``open_*`` function of a :class:`Service` class: same arguments as the class, and
    ``async with open_x(...) as x`` is ``async with X(...) as x``."""

    def open_(*args: _P.args, **kwargs: _P.kwargs) -> AbstractAsyncContextManager[_S]:
        # a Service is an async context manager of itself (mypy does not see it through the TypeVar)
        return cast(AbstractAsyncContextManager[_S], cls(*args, **kwargs))

    name = getattr(cls, "__name__", "service")
    # open_dht_node for DHTNode, open_local_discovery for LocalDiscovery
    open_.__name__ = open_.__qualname__ = "open_" + re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()
    open_.__doc__ = (f"Open a :class:`{name}` (the arguments are its constructor's): "
                     f"``async with`` it gives the open {name}, closed when the block ends.")
    return open_
