"""Exceptions propagate (hypernode.tasks): whatever an object does in the background, an exception raised
in the body of its ``async with`` comes out unchanged, a background failure comes out alone (not in a
group), and KeyboardInterrupt and cancellation are never swallowed. Each object is busy while the body
raises: a store's replication server that listens and has a live connection, a node with a peer and
discovery, a DHT node and a swarm on loopback, a protocol stream mid-connection; and discovery's objects
again, opened by their ``open_*`` functions."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

from hypernode.corestore import Corestore
from hypernode.discovery.local import LocalDiscovery, open_local_discovery
from hypernode.discovery.peering import Peering, open_peering
from hypernode.discovery.swarm import DHTNode, Swarm, open_dht_node, open_swarm
from hypernode.drive import Hyperdrive
from hypernode.multi import MultiDrive
from hypernode.node import Node
from hypernode.replication import replicator_of
from hypernode.replication.server import open_replication_server
from hypernode.tasks import cleanup, leaf, open_service_nursery
from hypernode.wire.noise import KeyPair
from hypernode.wire.stream import ProtocolStream


@contextlib.asynccontextmanager
async def busy_replication_server() -> AsyncIterator[Any]:
    """A store's replication server that listens and has a live connection."""
    async with Corestore() as other, open_replication_server(other) as other_net:
        feed = await other.get(name="f")
        await feed.append(b"x")
        port = await other_net.listen()
        async with Corestore() as store, open_replication_server(store) as store_net:
            await store_net.listen()
            copy = await store.get(feed.key)
            await store_net.connect("127.0.0.1", port)
            await replicator_of(copy).download(0, 1)
            yield store_net


@contextlib.asynccontextmanager
async def busy_node() -> AsyncIterator[Any]:
    async with Node(None) as other:
        drive = await other.create_drive()
        await drive.write_file("/a", b"a")
        async with Node(None, peers=[("127.0.0.1", other.port), ("127.0.0.1", 9)], bootstrap=[]) as node:
            copy = await node.open_drive(drive.key)
            await node.sync_feed(copy.metadata, timeout=10)
            yield node


@contextlib.asynccontextmanager
async def busy_dht() -> AsyncIterator[Any]:
    async with DHTNode(host="127.0.0.1", ephemeral=False) as boot:
        async with DHTNode(host="127.0.0.1", bootstrap=[boot.address]) as dht:
            await dht.wait_bootstrapped()
            yield dht


@contextlib.asynccontextmanager
async def busy_swarm() -> AsyncIterator[Any]:
    async with DHTNode(host="127.0.0.1", ephemeral=False) as boot:
        async with Swarm(bootstrap=[boot.address], port=4000, host="127.0.0.1") as swarm:
            swarm.join(b"t" * 32, announce=True)
            await swarm.flush()
            yield swarm


@contextlib.asynccontextmanager
async def busy_local() -> AsyncIterator[Any]:
    async with LocalDiscovery(port=0) as local:  # listens only: nothing is sent
        yield local


@contextlib.asynccontextmanager
async def busy_peering() -> AsyncIterator[Any]:
    async with Node(None, port=0) as node, \
            Peering(server=node.server, key_pair=node.key_pair, port=node.port, bootstrap=[]) as peering:
        yield peering


# the open_* functions of discovery: the same objects, opened by their function
@contextlib.asynccontextmanager
async def busy_open_dht_node() -> AsyncIterator[Any]:
    async with open_dht_node(host="127.0.0.1", ephemeral=False) as boot:
        async with open_dht_node(host="127.0.0.1", bootstrap=[boot.address]) as dht:
            await dht.wait_bootstrapped()
            async with dht.open_lookup(b"t" * 32):  # a query running in the body
                yield dht


@contextlib.asynccontextmanager
async def busy_open_swarm() -> AsyncIterator[Any]:
    async with open_dht_node(host="127.0.0.1", ephemeral=False) as boot:
        async with open_swarm(bootstrap=[boot.address], port=4000, host="127.0.0.1") as swarm:
            async with swarm.peers():
                swarm.join(b"t" * 32, announce=True)
                await swarm.flush()
                yield swarm


@contextlib.asynccontextmanager
async def busy_open_local_discovery() -> AsyncIterator[Any]:
    async with open_local_discovery(port=0) as local, local.peers():
        yield local


@contextlib.asynccontextmanager
async def busy_open_peering() -> AsyncIterator[Any]:
    """The explicit form: a store that listens, no node."""
    async with Corestore() as store, open_replication_server(store) as store_net:
        key_pair = KeyPair.generate()
        port = await store_net.listen(key_pair=key_pair)
        async with open_peering(server=store_net, key_pair=key_pair, port=port, bootstrap=[]) as peering:
            peering.join(b"t" * 32)
            yield peering


@contextlib.asynccontextmanager
async def busy_stream() -> AsyncIterator[Any]:
    left, right = trio.testing.memory_stream_pair()
    async with ProtocolStream(left, initiator=True) as a, ProtocolStream(right, initiator=False) as b:
        await a.wait_handshake()
        await b.wait_handshake()
        yield a


@contextlib.asynccontextmanager
async def busy_multidrive() -> AsyncIterator[Any]:
    async with Corestore() as store:
        drive = await Hyperdrive.open(store)
        await drive.write_file("/a", b"a")
        async with MultiDrive(drive) as multi:
            yield multi


OBJECTS: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Any]]] = {
    "open_replication_server": busy_replication_server, "Node": busy_node, "DHTNode": busy_dht,
    "Swarm": busy_swarm,
    "LocalDiscovery": busy_local, "Peering": busy_peering, "ProtocolStream": busy_stream,
    "MultiDrive": busy_multidrive, "open_dht_node": busy_open_dht_node, "open_swarm": busy_open_swarm,
    "open_local_discovery": busy_open_local_discovery, "open_peering": busy_open_peering,
}
RUNS_TASKS = [name for name in OBJECTS if name != "MultiDrive"]


@pytest.mark.parametrize("name", OBJECTS)
async def test_an_exception_in_the_body_comes_out_unchanged(name):
    error = ValueError("from the body")
    with trio.fail_after(20), pytest.raises(ValueError) as info:
        async with OBJECTS[name]():
            raise error
    assert info.value is error


async def test_the_reported_case_a_listening_store():
    with pytest.raises(ValueError):
        async with Corestore() as s, open_replication_server(s) as s_net:
            await s_net.listen()
            raise ValueError


@pytest.mark.parametrize("name", OBJECTS)
async def test_a_timeout_in_the_body_is_catchable_as_itself(name):
    caught = False
    with trio.fail_after(20):
        try:
            async with OBJECTS[name]():
                with trio.fail_after(0.05):
                    await trio.sleep(5)
        except trio.TooSlowError:  # a plain `except trio.TooSlowError` catches it: no group around it
            caught = True
    assert caught


@pytest.mark.parametrize("name", OBJECTS)
async def test_keyboard_interrupt_is_not_swallowed(name):
    error = KeyboardInterrupt()
    with trio.fail_after(20), pytest.raises(KeyboardInterrupt) as info:
        async with OBJECTS[name]():
            raise error
    assert info.value is error


@pytest.mark.parametrize("name", OBJECTS)
async def test_a_cancelled_outer_scope_still_cancels(name):
    reached = []
    with trio.fail_after(20):
        with trio.CancelScope() as outer:
            async with OBJECTS[name]():
                outer.cancel()
                await trio.sleep(5)
                reached.append("after the sleep")
            reached.append("after the block")
        assert outer.cancelled_caught and reached == []
        with trio.move_on_after(0.05) as outer:  # a deadline, the same way
            async with OBJECTS[name]():
                await trio.sleep(5)
        assert outer.cancelled_caught


@pytest.mark.parametrize("name", RUNS_TASKS)
async def test_a_background_failure_comes_out_alone(name):
    error = RuntimeError("a background task failed")

    async def fail() -> None:
        await trio.sleep(0.01)
        raise error

    with trio.fail_after(20), pytest.raises(RuntimeError) as info:
        async with OBJECTS[name]() as obj:
            obj._nursery.start_soon(fail)
            await trio.sleep(5)  # cancelled by the failure
    assert info.value is error


async def test_the_body_exception_wins_over_a_failure_while_closing(caplog):
    error = ValueError("body")

    async def fail_on_cancel() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise OSError("a task failing as it is cancelled")

    with pytest.raises(ValueError) as info:
        async with open_service_nursery() as nursery:
            nursery.start_soon(fail_on_cancel)
            await trio.sleep(0.01)
            raise error
    assert info.value is error
    assert "a task failing as it is cancelled" in caplog.text  # logged, not lost


async def test_a_second_expected_failure_is_logged_quietly_and_a_bug_loudly(caplog):
    """Two tasks of one nursery fail: the first comes out; a second that is one of our own errors (a
    connection lost, seen by its reader and its writer) is a debug line without a traceback, any other
    exception (a bug) an error with its traceback."""
    import logging

    from hypernode.wire.stream import ConnectionClosed

    async def fail(error: BaseException, delay: float) -> None:
        try:
            await trio.sleep(delay)
        finally:
            raise error

    for second, level, traceback in ((ConnectionClosed("connection lost: reset"), logging.DEBUG, False),
                                     (KeyError("a bug"), logging.ERROR, True)):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="hypernode.tasks"), pytest.raises(ConnectionClosed):
            async with open_service_nursery() as nursery:
                nursery.start_soon(fail, ConnectionClosed("connection lost: first"), 0.01)
                nursery.start_soon(fail, second, 5)  # fails as it is cancelled
                await trio.sleep(5)
        records = [r for r in caplog.records if "failed as well" in r.getMessage()]
        assert [r.levelno for r in records] == [level]
        assert (records[0].exc_info is not None) is traceback


async def test_a_failing_cleanup_does_not_replace_the_body_exception(caplog):
    async def close() -> None:
        raise OSError("close failed")

    error = ValueError("body")
    with pytest.raises(ValueError) as info:
        async with cleanup(close):
            raise error
    assert info.value is error and "close failed" in caplog.text
    with pytest.raises(OSError, match="close failed"):  # with no body exception, it is raised
        async with cleanup(close):
            pass


async def test_cleanup_completes_when_the_outer_scope_is_cancelled():
    closed = []

    async def close() -> None:
        await trio.sleep(0.01)  # would raise Cancelled if it were not shielded
        closed.append(True)

    with trio.CancelScope() as scope:
        async with cleanup(close):
            scope.cancel()
            await trio.sleep(1)
    assert closed == [True] and scope.cancelled_caught


async def test_an_exception_keeps_its_cause_and_context():
    try:
        try:
            raise KeyError("first")
        except KeyError as first:
            raise ValueError("second") from first
    except ValueError as e:
        error = e
    with pytest.raises(ValueError) as info:
        async with open_service_nursery():
            raise error
    assert info.value is error and isinstance(error.__cause__, KeyError)
    assert isinstance(error.__context__, KeyError)


def test_leaf_picks_one_exception_out_of_nested_groups():
    ki = KeyboardInterrupt()
    bug = TypeError("bug")
    nested = BaseExceptionGroup("outer", [ExceptionGroup("inner", [bug]), BaseExceptionGroup("x", [ki])])
    assert leaf(nested) is ki
    assert leaf(ExceptionGroup("outer", [ExceptionGroup("inner", [bug])])) is bug
    assert leaf(bug) is bug
