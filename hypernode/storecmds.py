"""The bodies of the ``hypernode`` commands for the gateway, seeding and the store: ``gateway``,
``seed``, ``unseed``, ``seeds``, ``status``, ``drives``, ``forget``, ``put``, ``rm``, ``mkdir``
(:mod:`hypernode.cli` parses their arguments and calls these with a printer, ``out``).

A store is used by one process at a time. On a store in use by ``serve``, ``share`` or ``gateway``,
``status``, ``drives``, ``seeds``, ``seed`` and ``unseed`` ask that node on its control socket
(:mod:`hypernode.control`); ``forget``, ``put``, ``rm`` and ``mkdir`` change the store's data and are
refused, as every command that writes is. :func:`node_services` is what a long-running command adds
to its node: the seeding of every seeded drive and the control socket.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from hypernode.control import ControlError, control_request, serve_control
from hypernode.crypto import discovery_key
from hypernode.drive import Hyperdrive
from hypernode.errors import HypernodeError, StoreLockedError
from hypernode.node import Node
from hypernode.seeds import Seeder, add_seeds, read_seeds
from hypernode.status import DriveStatus, NodeStatus

Out = Callable[..., None]
READ_SIZE = 512 * 1024  # bytes read from a local file per write (one content block)


@contextlib.asynccontextmanager
async def node_services(node: Node) -> AsyncIterator[Seeder]:
    """While the block runs: every seeded drive downloaded and followed (with its mounts), and the
    node's control socket answering status and seeding requests."""
    seeder = Seeder(node)
    async with trio.open_nursery() as nursery:
        await nursery.start(seeder.run)
        async with serve_control(node, seeder):
            yield seeder
        nursery.cancel_scope.cancel()


# -- gateway ---------------------------------------------------------------------------------------


async def gateway(args: argparse.Namespace, out: Out, discovery: dict[str, Any]) -> None:
    from hypernode.gateway import Gateway

    async with Node(args.store, host=args.host, port=args.replication_port, peers=args.peer, sparse=True,
                    **discovery) as node:
        async with node_services(node) as seeder, \
                Gateway(node, host=args.host, port=args.port, seeder=seeder, timeout=args.timeout) as gw:
            out(f"gateway on {gw.url}")
            out(f"listening on {node.host}:{node.port}")
            await trio.sleep_forever()


# -- status, drives, seeds -------------------------------------------------------------------------


def _require_store(store: str) -> None:
    if not (Path(store) / "master_key").exists():
        raise HypernodeError(f"no store at {store}")


async def _asked(store: str, e: StoreLockedError, method: str, target: str, body: Any = None) -> Any:
    """The answer of the node that has ``store`` (raising its error as one line)."""
    try:
        status, answer = await control_request(store, method, target, body)
    except ControlError as c:
        raise HypernodeError(f"{e}: {c}") from None
    if status >= 300:
        raise HypernodeError(f"the node that has {store} (pid {e.pid}) answered {status}: {answer}")
    return answer


async def node_status(store: str) -> NodeStatus:
    """The status of the store's drives: from the node that has the store open, or read from the
    store (then there are no peers)."""
    _require_store(store)
    try:
        async with Node(store, port=None, sparse=True) as node:
            seeded = {s.key for s in read_seeds(node.directory)}
            return replace(node.status(seeded=seeded), running=False)
    except StoreLockedError as e:
        answer = await _asked(store, e, "GET", "/api/status")
        try:
            return NodeStatus.from_json(answer)
        except (KeyError, TypeError, ValueError) as bad:
            raise HypernodeError(f"the node that has {store} sent a status that does not read: {bad}"
                                 ) from None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _drive_line(d: DriveStatus) -> str:
    flags = [f for f, on in (("writable", d.writable), ("seeded", d.seeded)) if on]
    return (f"{d.key.hex()}  version {d.version}  {_size(d.bytes)}  {100 * d.local:.1f}% here  "
            f"{len(d.peers)} peer(s)" + (f"  ({', '.join(flags)})" if flags else ""))


async def status(args: argparse.Namespace, out: Out) -> None:
    st = await node_status(args.store)
    if args.json:
        out(json.dumps(st.to_json(), indent=1))
        return
    if st.running:
        where = f", replicating on {st.host}:{st.port}" if st.port is not None else ""
        out(f"node pid {st.pid} has {args.store}{where}; {st.connected_peers} peer(s) connected")
        out(_reachability_line(st))
    else:
        out(f"store {args.store}: no node is running (no peers)")
    for d in st.drives:
        out(_drive_line(d))
        for p in d.peers:
            way = f"{p.transport}, {'incoming' if p.incoming else 'outgoing'}"
            out(f"  peer {p.address} ({way})  up {_size(p.uploaded_bytes)}  down {_size(p.downloaded_bytes)}")


def _reachability_line(st: NodeStatus) -> str:
    """``reachable: ...``: how peers reach the node (see NodeStatus.reachable), where it listens for
    uTP, and its connections by transport."""
    how = {"tcp": "yes, over TCP", "utp": "yes, over uTP", "holepunched": "through NAT only, by holepunching",
           "unknown": "unknown (no peer has connected to us yet)", "not listening": "no (not listening)"}
    parts = [f"reachable: {how[st.reachable]}"]
    if st.utp_port is not None:
        parts.append(f"uTP on UDP port {st.utp_port}")
    if st.connections:
        counts = ", ".join(f"{n} {way} ({st.incoming.get(way, 0)} incoming)"
                           for way, n in sorted(st.connections.items()))
        parts.append(f"connections: {counts}")
    return "; ".join(parts)


async def drives(args: argparse.Namespace, out: Out) -> None:
    st = await node_status(args.store)
    if args.json:
        out(json.dumps([d.to_json() for d in st.drives], indent=1))
        return
    for d in st.drives:
        flags = [f for f, on in (("writable", d.writable), ("seeded", d.seeded)) if on]
        out(f"{d.key.hex()}  version {d.version}  {_size(d.bytes)}  {100 * d.local:.1f}% here"
            + (f"  ({', '.join(flags)})" if flags else ""))


async def seeds(args: argparse.Namespace, out: Out) -> None:
    st = await node_status(args.store)
    by_key = {d.key: d for d in st.drives}
    listed = read_seeds(args.store)
    for seed in listed:
        d = by_key.get(seed.key)
        if d is None:
            out(f"{seed.key.hex()}  not opened (the node could not open it: see its log)")
            continue
        state = "seeding" if st.running else "seeded (served when serve or gateway runs)"
        out(f"{seed.key.hex()}  {state}  version {d.version}  {100 * d.local:.1f}% here  "
            f"{len(d.peers)} peer(s)")
    if not listed:
        out("no drive is seeded (hypernode seed KEY)")


async def seed(args: argparse.Namespace, out: Out) -> None:
    keys: list[bytes] = list(dict.fromkeys(args.keys))
    try:
        async with Node(args.store, port=None, sparse=True) as node:
            added = set(add_seeds(node.directory, keys))
            for key in keys:
                await node.open_drive(key)  # in the store's drives from now on
    except StoreLockedError as e:
        answer = await _asked(args.store, e, "POST", "/api/seeds", {"keys": [k.hex() for k in keys]})
        added = {bytes.fromhex(k) for k in answer.get("added", [])}
        for key in keys:
            done = "seeding" if key in added else "already seeded"
            out(f"{done} {key.hex()} (by the running node, pid {e.pid})")
        return
    for key in keys:
        out(f"{'seeded' if key in added else 'already seeded'} {key.hex()}")
    out("serve or gateway downloads and serves what is seeded")


async def unseed(args: argparse.Namespace, out: Out) -> None:
    key: bytes = args.key
    try:
        async with Node(args.store, port=None, sparse=True) as node:
            from hypernode.seeds import remove_seed

            if not remove_seed(node.directory, key):
                raise HypernodeError(f"drive {key.hex()} is not seeded")
    except StoreLockedError as e:
        await _asked(args.store, e, "DELETE", f"/api/seeds/{key.hex()}")
    out(f"unseeded {key.hex()} (its data stays in the store: hypernode forget KEY removes it)")


# -- forget ----------------------------------------------------------------------------------------


async def forget(args: argparse.Namespace, out: Out) -> None:
    key: bytes = args.key
    _require_store(args.store)
    async with Node(args.store, port=None, sparse=True) as node:  # a store in use is refused here
        if key not in node.drives and not node.store.exists(discovery_key(key)):
            raise HypernodeError(f"drive {key.hex()} is not in {args.store}")
        st = next((d for d in node.status().drives if d.key == key), None)
        if not args.yes:
            what = f"{st.local_blocks} blocks ({_size(st.bytes)})" if st is not None else "its feeds"
            secret = (" Its secret key goes too: this drive can never be written again."
                      if st is not None and st.writable else "")
            question = f"forget drive {key.hex()}: delete {what} from {args.store}?{secret} [y/N] "
            if not await _confirm(question):
                raise HypernodeError(f"drive {key.hex()} not forgotten (answer y, or give --yes)")
        removed = await node.forget_drive(key)
    out(f"forgot {key.hex()}: {len(removed)} files deleted")


async def _confirm(question: str) -> bool:
    print(question, end="", file=sys.stderr, flush=True)
    answer = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
    if not answer.endswith("\n"):
        print(file=sys.stderr, flush=True)  # no terminal, or end of input: the line the prompt began
    return answer.strip().lower() in ("y", "yes")


# -- put, rm, mkdir --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _writable_drive(args: argparse.Namespace) -> AsyncIterator[Hyperdrive]:
    keys = args.keys
    if len(keys) != 1:
        raise HypernodeError(f"{args.command} writes into one drive: give one KEY")
    async with Node(args.store, port=None, sparse=True) as node:
        drive = await node.open_drive(keys[0])
        if not drive.writable:
            raise HypernodeError(f"drive {keys[0].hex()} is not writable from this store")
        yield drive


async def put(args: argparse.Namespace, out: Out) -> None:
    local = args.local
    path: str = args.path
    if path.endswith("/"):
        if local == "-":
            raise HypernodeError("put - reads standard input: give the drive path a file name")
        path += os.path.basename(os.path.normpath(local))
    if local != "-" and os.path.isdir(local):
        raise HypernodeError(f"{local} is a folder: put takes a file (share takes a folder)")
    with open(sys.stdin.fileno() if local == "-" else local, "rb", closefd=local != "-") as source:
        mode = 0 if local == "-" else os.fstat(source.fileno()).st_mode
        opts: dict[str, Any] = {"mode": mode} if mode & 0o111 else {}  # the executable bit travels
        async with _writable_drive(args) as drive:
            async with drive.create_write_stream(path, **opts) as stream:
                while True:
                    chunk = await trio.to_thread.run_sync(source.read, READ_SIZE, abandon_on_cancel=True)
                    if not chunk:
                        break
                    await stream.write(chunk)
            out(f"put {path} ({stream.bytes_written} bytes) into {drive.key.hex()}, version {drive.version}")


async def rm(args: argparse.Namespace, out: Out) -> None:
    path: str = args.path
    async with _writable_drive(args) as drive:
        st = await drive.lstat(path)
        if st.is_directory() and not st.linkname and not st.is_file():
            await drive.rmdir(path)
        else:
            await drive.unlink(path)
        out(f"removed {path} from {drive.key.hex()}, version {drive.version}")


async def mkdir(args: argparse.Namespace, out: Out) -> None:
    path: str = args.path
    async with _writable_drive(args) as drive:
        await drive.mkdir(path)
        out(f"made {path} in {drive.key.hex()}, version {drive.version}")
