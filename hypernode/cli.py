"""The ``hypernode`` command: a thin layer over :class:`hypernode.node.Node`.

    hypernode [--store DIR] create
    hypernode [--store DIR] share FOLDER [--key KEY] [--allow-empty] [--port P] [--peer HOST:PORT ...]
    hypernode [--store DIR] serve [--port P] [--peer HOST:PORT ...]
    hypernode [--store DIR] clone KEY FOLDER [--peer HOST:PORT ...] [--live] [--force] [--history]
                                  [--skip-conflicts]
    hypernode dht [--port P] [--host H] [--bootstrap HOST:PORT|none ...]
    hypernode [--store DIR] ls|cat|stat KEY[,KEY...] PATH [--peer HOST:PORT ...]
    hypernode [--store DIR] ext listen KEY NAME [--peer ...] [--port P]
    hypernode [--store DIR] ext send KEY NAME MESSAGE [--peer ...] [--port P]
    hypernode [--store DIR] mount KEY[,KEY...] MOUNTPOINT [--direct-io] [--peer HOST:PORT ...] [--port P]
    hypernode [--store DIR] gateway [--host H] [--port P] [--peer ...] [--timeout S] [--replication-port P]
    hypernode [--store DIR] seed KEY... | unseed KEY | seeds
    hypernode [--store DIR] status [--json] | drives [--json]
    hypernode [--store DIR] forget KEY [--yes]
    hypernode [--store DIR] put LOCALFILE|- KEY PATH | rm KEY PATH | mkdir KEY PATH
    hypernode demo [--dir DIR]
    hypernode --version

The store is ``~/.hypernode`` unless ``--store`` names another. A KEY may be written ``hyper://KEY``;
for ls, cat, stat, put, rm and mkdir ``hyper://KEY/path`` names the path too. The gateway, seeding and
store commands' bodies are in :mod:`hypernode.storecmds`.

Exit codes: 0 success; 1 a failure, said in one line ``hypernode: ...`` on stderr (an internal error
adds a hint to rerun with ``-v``, which prints the traceback); 2 a usage error (a bad argument, also one
line); 130 after Ctrl-C (SIGINT) and 143 after SIGTERM, 128 plus the signal's number, once the node has
closed cleanly; 141 when the reader of our output went away (``hypernode cat ... | head -c1``), as a
command killed by SIGPIPE, quietly. A command never exits 0 after a failure or an interruption.

A store is used by one process at a time (see :mod:`hypernode.storelock`): a command on a store in use
exits 1 with ``hypernode: store DIR is in use by another process (pid N)``, having touched nothing,
except ls, cat and stat, which then read through the process that has it when that process serves it
(share, serve, ext listen with a port), as a reader with no store of its own would.

``--timeout`` means no progress: how long to wait for a peer, or for the next block, never a limit on a
whole transfer (0: wait forever). When it runs out, the message says why: the peers that could not be
reached (``cannot reach 127.0.0.1:9: connection refused``), or that none of the connected peers has the
drive.

Every command that finds peers (share, serve, clone, ls, cat, stat, ext) does it as hyperswarm 2 does:
on the DHT, through the ``--bootstrap`` nodes (default: hyperswarm's, or the comma-separated list in
``$HYPERNODE_BOOTSTRAP``; ``none``: no DHT), and on the local network by multicast DNS (``--no-local``,
or ``HYPERNODE_LOCAL_DISCOVERY=0``, turns it off). ls, cat and stat read what the store has, and wait
for a peer only for a drive the store has no data of (or, with ``--peer``, to get the peers' latest).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from hypernode import storecmds
from hypernode.demo import demo
from hypernode.drive import Hyperdrive, Stat
from hypernode.errors import HypernodeError, PeerTimeoutError, StoreLockedError
from hypernode.folder import (
    ExportIncomplete,
    Progress,
    SyncReport,
    download_history,
    export_drive,
    few,
    prepare_clone_folder,
    watch_folder,
    watchdog,
)
from hypernode.multi import MultiDrive
from hypernode.node import Node, parse_key, parse_peer, parse_url, remember_shared_folder, shared_folder_key
from hypernode.tasks import leaf

DEFAULT_STORE = Path.home() / ".hypernode"


class UsageError(Exception):
    """A bad argument: printed as one line, exit code 2."""


class OutputClosed(Exception):
    """Whoever reads our standard output has gone (a broken pipe): exit 141, quietly."""


def out(*parts: Any) -> None:
    try:
        print(*parts, flush=True)
    except BrokenPipeError:
        raise OutputClosed from None


# -- commands ---------------------------------------------------------------------------------------


async def cmd_create(args: argparse.Namespace) -> None:
    async with Node(args.store, port=None) as node:
        drive = await node.create_drive()
        out(drive.key.hex())


def _discovery(args: argparse.Namespace) -> dict[str, Any]:
    """Node options for discovery from --bootstrap / --no-local and the environment."""
    from hypernode.discovery import DEFAULT_BOOTSTRAP

    bootstrap: list[tuple[str, int]] | None = args.bootstrap
    if bootstrap is None:
        env = os.environ.get("HYPERNODE_BOOTSTRAP")
        if env is None:
            bootstrap = list(DEFAULT_BOOTSTRAP)
        else:
            try:
                bootstrap = [parse_peer(p.strip()) for p in env.split(",") if p.strip() not in ("", "none")]
            except ValueError as e:
                raise UsageError(f"HYPERNODE_BOOTSTRAP: {e}") from None
    bootstrap = [b for b in bootstrap if b != _NO_BOOTSTRAP]
    local = not args.no_local and os.environ.get("HYPERNODE_LOCAL_DISCOVERY", "1") != "0"
    if not bootstrap and not local:
        return {}
    return {"bootstrap": bootstrap, "local_discovery": local}


async def cmd_share(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"not a folder: {folder}")
    async with Node(args.store, host=args.host, port=args.port, peers=args.peer, **_discovery(args)) as node:
        remembered = shared_folder_key(node.directory, folder)
        if args.key:
            drive = await node.open_drive(parse_key(args.key))
            if not drive.writable:
                raise UsageError(f"drive {drive.key.hex()} is not writable from this store")
        elif remembered is not None:
            drive = await node.open_drive(remembered)
            if not drive.writable:
                raise UsageError(f"drive {drive.key.hex()}, which shared {folder} before, is not "
                                 "writable from this store (give --key with a drive of this store)")
        else:
            drive = await node.create_drive()
        remember_shared_folder(node.directory, folder, drive.key)
        again = " (the drive that shared it before)" if drive.key == remembered and not args.key else ""
        out(f"sharing {folder} as {drive.key.hex()}{again}")
        out(f"listening on {node.host}:{node.port}")
        told: dict[str, str] = {}

        def changed(report: SyncReport) -> None:
            if report:
                out(f"synced: {len(report.written)} written, {len(report.removed)} removed, "
                    f"{len(report.folders)} folders (version {drive.version})")
            scanned = report.scan
            unreadable = [f"{p} ({why})" for p, why in scanned.unreadable.items()]
            notes = {
                "outside": scanned.outside and f"not shared: {len(scanned.outside)} symlink(s) pointing "
                                               f"outside the folder ({few(scanned.outside)})",
                "unreadable": unreadable and f"could not read {len(unreadable)} entries (their drive "
                                             f"entries are left as they were): {few(unreadable)}",
            }
            for name, note in notes.items():
                if note and told.get(name) != note:
                    print(f"hypernode: {note}", file=sys.stderr, flush=True)
                told[name] = note or ""

        def problem(message: str | None) -> None:
            if message is None:
                out(f"{folder} is back: publishing its changes again")
            else:
                print(f"hypernode: {message}; serving version {drive.version} until it is back",
                      file=sys.stderr, flush=True)

        async with storecmds.node_services(node):
            await watch_folder(drive, folder, interval=args.interval, on_change=changed, on_problem=problem,
                               allow_empty=args.allow_empty)


async def cmd_serve(args: argparse.Namespace) -> None:
    async with Node(args.store, host=args.host, port=args.port, peers=args.peer, **_discovery(args)) as node:
        out(f"listening on {node.host}:{node.port}")
        for key, drive in node.drives.items():
            out(f"serving {key.hex()} (version {drive.version}{', writable' if drive.writable else ''})")
        async with storecmds.node_services(node):  # seeded drives downloaded and followed; status
            await trio.sleep_forever()


async def cmd_clone(args: argparse.Namespace) -> None:
    key = parse_key(args.key)
    target = prepare_clone_folder(Path(args.folder), key, force=args.force)  # before anything is touched
    folder, manifest = target.manifest.folder, target.manifest
    async with Node(args.store, port=None, peers=args.peer, sparse=not args.history,
                    **_discovery(args)) as node:
        drive = await node.open_drive(key)
        if args.peer or node.discovery is not None:
            await node.sync_feed(drive.metadata, timeout=args.timeout)
        if drive.version <= 1 and not drive.metadata.has(0):
            raise UsageError(f"drive {key.hex()} has no data here and no peer sent any")
        await drive.content_feed(timeout=args.timeout)
        if target.resumed:
            out(f"continuing the clone of {key.hex()} in {folder}")
        elif target.before:
            out(f"kept {len(target.before)} entries that were in {folder} before the clone "
                f"({few(target.before)}): it never deletes what it did not write")
        bar = _progress_reporter(sys.stdout.isatty())
        progress = Progress()
        version = drive.version
        incomplete: ExportIncomplete | None = None
        try:
            with watchdog(args.timeout, f"from the peers of {key.hex()[:8]}") as kick:
                try:
                    await export_drive(drive.checkout(version), folder, force=args.force,
                                       skip_conflicts=args.skip_conflicts, manifest=manifest,
                                       progress=progress, on_progress=bar, on_data=kick)
                except ExportIncomplete as e:
                    incomplete = e
                if args.history:
                    await download_history(drive, kick)
            bar(progress, final=True)
        except trio.Cancelled:
            with contextlib.suppress(OSError):  # (a closed stdout must not hide the cancellation)
                bar.end()
                out(f"interrupted after {progress.files_done}/{progress.files_total} files: "
                    "the same command resumes the clone")
            raise
        finally:
            with contextlib.suppress(OSError):
                bar.end()
        out(f"cloned {drive.key.hex()} version {version}: {progress.files_done} files, "
            f"{progress.bytes_done} bytes into {folder}")
        _tell_export(progress, args)
        if incomplete is not None:
            raise HypernodeError(_unplaced_message(incomplete))
        if args.live:
            told = {(u.path, u.why) for u in progress.unplaced}
            while True:
                if drive.version == version:
                    await drive.update()
                version = drive.version
                p = Progress()
                error: ExportIncomplete | None = None
                try:
                    await export_drive(drive.checkout(version), folder, force=args.force,
                                       skip_conflicts=args.skip_conflicts, manifest=manifest, progress=p)
                except ExportIncomplete as e:
                    error = e
                out(f"updated to version {version}: {len(p.written)} written, {len(p.removed)} removed")
                now = {(u.path, u.why) for u in p.unplaced}
                _tell_export(p, args, listed=now != told)  # a list is printed again only if it changed
                if error is not None and now != told:
                    print(f"hypernode: {_unplaced_message(error)}", file=sys.stderr, flush=True)
                told = now


def _tell_export(p: Progress, args: argparse.Namespace, listed: bool = True) -> None:
    """The export's notes: every drive path it did not place, one a line (if ``listed``), and what it
    kept of the clone's files that the drive removed."""
    if listed:
        for u in sorted(p.unplaced, key=lambda u: u.path):
            out(f"not placed: {u.path} ({u.why})")
        if args.skip_conflicts and p.unplaced and all(u.conflict for u in p.unplaced):
            out(f"skipped {len(p.unplaced)} drive paths that cannot be placed (--skip-conflicts)")
    unplaced = {u.path for u in p.unplaced}
    gone = [f"{path} ({why})" for path, why in p.kept if path not in unplaced]
    if gone:
        out(f"kept {len(gone)} entries the drive removed: {few(gone)}")


def _unplaced_message(e: ExportIncomplete) -> str:
    """One line: how many drive paths were not placed, a few of them, and what would place them."""
    hints = []
    if any(u.force_places for u in e.unplaced):
        hints.append("--force overwrites local files")
    if any(u.conflict for u in e.unplaced):
        hints.append("--skip-conflicts clones without the drive's conflicts")
    if not hints:
        hints.append("move the local entries out of the way")
    names = [f"{u.path} ({u.why})" for u in sorted(e.unplaced, key=lambda u: u.path)]
    return f"{len(e.unplaced)} drive path(s) not placed in {e.folder}: {few(names)}; {'; '.join(hints)}"


async def cmd_dht(args: argparse.Namespace) -> None:
    from hypernode.discovery import DHTNode

    bootstrap = _discovery(args).get("bootstrap", [])
    async with DHTNode(host=args.host, port=args.port, bootstrap=bootstrap, ephemeral=False) as dht:
        out(f"dht node listening on {dht.host}:{dht.port} (id {dht.id.hex()[:16]}, "
            f"{'bootstrap node' if not bootstrap else f'{len(bootstrap)} bootstrap node(s)'})")
        await trio.sleep_forever()


class _ProgressBar:
    """The clone's progress: a bar redrawn on one line on a terminal, a line a second otherwise.
    :meth:`end` ends the bar's line, so that no message is glued onto it."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.last = 0.0
        self.open = False

    def __call__(self, p: Progress, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.1 if self.tty else 1.0):
            return
        self.last = now
        mib = 1024 * 1024
        line = (f"{p.files_done}/{p.files_total} files  "
                f"{p.bytes_done / mib:.1f}/{p.bytes_total / mib:.1f} MiB  {p.rate / mib:.1f} MiB/s")
        if self.tty:
            width = 24
            done = int(width * p.bytes_done / p.bytes_total) if p.bytes_total else width
            sys.stdout.write(f"\r[{'=' * done}{' ' * (width - done)}] {line}")
            self.open = True
            if final:
                self.end()
            sys.stdout.flush()
        elif not final:
            out(f"progress: {line}")

    def end(self) -> None:
        if self.open:
            self.open = False
            sys.stdout.write("\n")
            sys.stdout.flush()


def _progress_reporter(tty: bool) -> _ProgressBar:
    report = _ProgressBar(tty)
    return report


async def _open_drives(node: Node, args: argparse.Namespace, through: tuple[str, int] | None
                       ) -> list[Hyperdrive]:
    """The drives of ``args.keys``, each synced from the peers first when it has no data here, or when
    peers were named (``--peer``, or the process that has the store)."""
    drives: list[Hyperdrive] = [await node.open_drive(k) for k in args.keys]
    for d in drives:
        here = d.writable or d.version > 1 or d.metadata.has(0)
        if d.writable:  # written only here: nothing newer on any peer (and no peer need have it)
            continue
        if args.peer or through is not None or (not here and node.discovery is not None):
            await node.sync_feed(d.metadata, timeout=args.timeout)
    for d in drives:
        if d.version <= 1 and not d.metadata.has(0):
            raise HypernodeError(f"drive {d.key.hex()} has no data here (give --peer, or let discovery "
                                 f"find a peer, to fetch it)")
    return drives


@contextlib.asynccontextmanager
async def _merged_view(args: argparse.Namespace) -> AsyncIterator[MultiDrive]:
    """The MultiDrive of ``args.keys`` in a node that only reads (sparse, no listening port). While a
    read waits on peers, ``--timeout`` is how long it waits for the next block.

    A store in use by another process is read through that process when it serves (its lock file says
    where), by a node with no store of its own, as any reader on the network would."""
    discovery = _discovery(args)
    async with contextlib.AsyncExitStack() as stack:
        through: tuple[str, int] | None = None
        try:
            node = await stack.enter_async_context(
                Node(args.store, port=None, peers=args.peer, sparse=True, **discovery))
        except StoreLockedError as e:
            if e.address is None:
                raise HypernodeError(f"{e}, which does not serve it: try again when it ends") from None
            host, port = e.address
            through = ({"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host), port)
            node = await stack.enter_async_context(
                Node(None, port=None, peers=[through, *args.peer], sparse=True, **discovery))
        drives = await _open_drives(node, args, through)  # each wait bounded by --timeout
        async with node.progress_timeout(args.timeout, f"reading drive {args.keys[0].hex()}"):
            multi = MultiDrive(drives[0])  # the first is the primary
            for d in drives[1:]:
                await multi.add_drive(d)
            yield multi


async def cmd_ls(args: argparse.Namespace) -> None:
    async with _merged_view(args) as multi:
        entries = await multi.readdir(args.path, stats=True)
    for e in entries:
        if args.long:
            out(f"{_kind(e.stat)} {e.stat.size:>12} {e.drive.key.hex()[:8]} {e.name}")  # type: ignore[union-attr]
        else:
            out(e.name + ("/" if e.stat.is_directory() else ""))


async def cmd_cat(args: argparse.Namespace) -> None:
    try:
        async with _merged_view(args) as multi:
            async for chunk in multi.create_read_stream(args.path):
                sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise OutputClosed from None


async def cmd_stat(args: argparse.Namespace) -> None:
    async with _merged_view(args) as multi:
        st = await multi.lstat(args.path)
    info = {"path": args.path, "type": _kind(st, long=True), "drive": st.drive.key.hex(),  # type: ignore[union-attr]
            **st.to_dict()}
    out(json.dumps(info, indent=1))


def _kind(st: Stat, long: bool = False) -> str:
    kind = ("symlink" if st.linkname else "mount" if st.mount else "directory" if st.is_directory()
            else "file")
    return kind if long else kind[0]


async def cmd_ext(args: argparse.Namespace) -> None:
    port = args.port if args.port is not None else (None if args.peer else 0)
    async with Node(args.store, host=args.host, port=port, peers=args.peer, **_discovery(args)) as node:
        drive = await node.open_drive(args.key)
        if args.action == "listen":
            ext = drive.register_extension(args.name, args.encoding)
            if node.port is not None:
                out(f"listening on {node.host}:{node.port}")
            out(f"waiting for '{args.name}' messages on {drive.key.hex()}")
            async for received, peer in ext:  # until the node closes
                who = (peer.remote_public_key or b"").hex()[:8] or "?"
                text = received if isinstance(received, str) else (
                    json.dumps(received) if args.encoding == "json" else bytes(received).hex())
                out(f"{who}: {text}")
        else:
            message: Any = args.message
            if args.encoding == "json":
                try:
                    message = json.loads(args.message)
                except ValueError:
                    raise UsageError(f"not JSON: {args.message!r}") from None
            elif args.encoding == "binary":
                message = args.message.encode()
            ext = drive.register_extension(args.name, args.encoding)
            await node.wait_for_peer(drive.metadata, timeout=args.timeout)
            ext.broadcast(message)
            sent = 0
            for session in [s for s in node.server.sessions if drive.metadata.discovery_key in s.peers]:
                await session.stream.drain()  # on its way; the stream ends a peer that does not read
                sent += not session.closed
            if not sent:
                raise HypernodeError(f"the message was not sent: the peers of {drive.key.hex()} went away")
            out(f"sent to {sent} peer(s)")


async def cmd_mount(args: argparse.Namespace) -> None:
    """Mount a drive (one key) or the merged view of several at MOUNTPOINT until SIGINT or SIGTERM
    (exit 130 or 143, as every command after a signal) or until unmounted from outside (exit 0)."""
    from hypernode.mount import check_fuse, check_mountpoint, mount

    keys, url_path = args.keys
    if url_path is not None:
        raise UsageError(f"mount takes drive keys, not a path in a drive ({url_path})")
    args.keys = keys
    where = check_mountpoint(args.mountpoint)  # before the store is touched
    check_fuse()
    async with Node(args.store, host=args.host, port=args.port, peers=args.peer, sparse=True,
                    **_discovery(args)) as node:
        drives = await _open_drives(node, args, None)
        for d in drives:  # drives mounted in them: their entries too, before the first listing
            for at, mounted in (await d.get_all_mounts()).items():
                if at != "/" and not mounted.writable and (args.peer or node.discovery is not None):
                    try:
                        await node.sync_feed(mounted.metadata, timeout=args.timeout)
                    except PeerTimeoutError as e:  # (listed when a peer has it: the mount follows it)
                        print(f"hypernode: the drive mounted at {at}: {e}", file=sys.stderr, flush=True)
        view: Hyperdrive | MultiDrive = drives[0]
        if len(drives) > 1:
            view = MultiDrive(drives[0])
            for d in drives[1:]:
                await view.add_drive(d)
        staging = node.directory / "staging" if node.directory is not None else None
        mode = "writable" if view.writable else "read-only"
        what = f"drive {keys[0].hex()}" if len(keys) == 1 else f"the merged view of {len(keys)} drives"

        def say_mounted() -> None:
            if node.port is not None:
                out(f"listening on {node.host}:{node.port}")
            out(f"mounted {what} at {where} ({mode}); Ctrl-C unmounts")

        written = await mount(view, where, staging=staging, timeout=args.timeout, on_mounted=say_mounted,
                              direct_io=args.direct_io)
        out(f"unmounted {where}" + (f" (wrote back {written} files still open)" if written else ""))
# -- gateway, seeding, store management (bodies in hypernode.storecmds) -----------------------------


async def cmd_gateway(args: argparse.Namespace) -> None:
    await storecmds.gateway(args, out, _discovery(args))


async def cmd_seed(args: argparse.Namespace) -> None:
    await storecmds.seed(args, out)


async def cmd_unseed(args: argparse.Namespace) -> None:
    await storecmds.unseed(args, out)


async def cmd_seeds(args: argparse.Namespace) -> None:
    await storecmds.seeds(args, out)


async def cmd_status(args: argparse.Namespace) -> None:
    await storecmds.status(args, out)


async def cmd_drives(args: argparse.Namespace) -> None:
    await storecmds.drives(args, out)


async def cmd_forget(args: argparse.Namespace) -> None:
    await storecmds.forget(args, out)


async def cmd_put(args: argparse.Namespace) -> None:
    await storecmds.put(args, out)


async def cmd_rm(args: argparse.Namespace) -> None:
    await storecmds.rm(args, out)


async def cmd_mkdir(args: argparse.Namespace) -> None:
    await storecmds.mkdir(args, out)


# -- entry point ------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line."""

    def error(self, message: str) -> Any:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from hypernode import __version__

    parser = _Parser(prog="hypernode", description="A Hypercore 9 / hyperdrive 10 node.")
    parser.add_argument("--version", action="version", version=f"hypernode {__version__}")
    parser.add_argument("--store", default=str(DEFAULT_STORE), type=_store_arg,
                        help="the node's store (default ~/.hypernode)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log what the node does; print the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", required=True)

    def net(p: argparse.ArgumentParser, listen: bool, port_default: int | None = 0) -> None:
        p.add_argument("--peer", action="append", default=[], type=_peer_arg, metavar="HOST:PORT",
                       help="a peer to connect to (repeatable)")
        p.add_argument("--timeout", type=_timeout_arg, default=60.0, metavar="SECONDS",
                       help="how long to wait for a peer, or for the next block (0: forever; default 60)")
        if listen:
            p.add_argument("--port", type=_port_arg, default=port_default,
                           help="TCP port to listen on (0: any)")
            p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")

    def discover(p: argparse.ArgumentParser) -> None:
        p.add_argument("--bootstrap", action="append", default=None, type=_bootstrap_arg,
                       metavar="HOST:PORT", help="a DHT bootstrap node (repeatable; 'none': no DHT; "
                       "default: hyperswarm's, or $HYPERNODE_BOOTSTRAP)")
        p.add_argument("--no-local", action="store_true", help="no multicast-DNS discovery on the LAN")

    p = sub.add_parser("demo", help="two nodes on loopback share, clone and merge drives")
    p.add_argument("--dir", help="where the demo keeps its files (default: a new temp dir)")
    sub.add_parser("create", help="create a drive; prints its key")
    p = sub.add_parser("share", help="import a folder into a drive, keep it in sync and serve it")
    p.add_argument("folder", type=_path_arg)
    p.add_argument("--key", help="a writable drive of this store to share into (default: the one that "
                   "shared this folder before, or a new one)")
    p.add_argument("--interval", type=_interval_arg, default=1.0, help="seconds between folder scans")
    p.add_argument("--allow-empty", action="store_true",
                   help="publish the folder emptied all at once (by default that is taken for a mistake)")
    net(p, True)
    discover(p)
    p = sub.add_parser("serve", help="serve every drive of the store and sync them live")
    net(p, True)
    discover(p)
    p = sub.add_parser("dht", help="run a DHT node (with --bootstrap none: a bootstrap node)")
    p.add_argument("--port", type=_port_arg, default=49737, help="UDP port (0: any)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")
    discover(p)
    p = sub.add_parser("clone", help="download a drive into a folder")
    p.add_argument("key")
    p.add_argument("folder", type=_path_arg)
    p.add_argument("--live", action="store_true", help="keep following the drive's changes")
    p.add_argument("--force", action="store_true", help="clone into a folder that is not empty, "
                   "overwriting same-named files (nothing else there is changed or deleted)")
    p.add_argument("--history", action="store_true",
                   help="fetch every version's data (default: only the current version's files)")
    p.add_argument("--skip-conflicts", action="store_true",
                   help="exit 0 although the drive holds paths no folder can (a file and a folder at one "
                   "path, names with NUL or '..'); each is still named")
    net(p, False)
    discover(p)
    for name, help_text in (("ls", "list a folder of the merged drives"), ("cat", "print a file"),
                            ("stat", "print an entry's stat as JSON")):
        p = sub.add_parser(name, help=help_text + " (KEY[,KEY...], the first primary)")
        p.add_argument("keys", metavar="KEY[,KEY...]", type=_keys_arg,
                       help="drive keys; hyper://KEY/PATH names the path too")
        p.add_argument("path", nargs="?", default=None, help="default: / for ls" if name == "ls" else None)
        if name == "ls":
            p.add_argument("-l", "--long", action="store_true", help="kind, size and drive of each entry")
        net(p, False)
        discover(p)
    p = sub.add_parser("mount", help="mount a drive (or the merged view of several) as a folder, "
                       "through FUSE, until Ctrl-C")
    p.add_argument("keys", metavar="KEY[,KEY...]", type=_keys_arg,
                   help="drive keys: one drive, or the merged view of several (the first names it; "
                   "writes go to the first writable one)")
    p.add_argument("mountpoint", type=_path_arg, help="an empty folder")
    p.add_argument("--direct-io", action="store_true",
                   help="files opened read-only bypass the kernel's page cache: first reads of big files "
                   "about twice as fast, but every read comes to hypernode again, and a shared mmap of "
                   "such a file fails (ENODEV), so SQLite's WAL mode cannot use it")
    net(p, True, port_default=None)
    discover(p)
    p = sub.add_parser("ext", help="extension messages with the peers of a drive")
    ext = p.add_subparsers(dest="action", required=True)
    for action in ("listen", "send"):
        q = ext.add_parser(action)
        q.add_argument("key", type=_key_arg)
        q.add_argument("name")
        if action == "send":
            q.add_argument("message")
        q.add_argument("--encoding", default="utf-8", choices=["utf-8", "json", "binary"])
        net(q, True, port_default=None)
        discover(q)
    p = sub.add_parser("gateway", help="serve the store's drives over HTTP, with a dashboard at /")
    p.add_argument("--port", type=_port_arg, default=8080, help="HTTP port (default 8080; 0: any)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve HTTP and replication on "
                   "(default loopback only; 0.0.0.0: all)")
    p.add_argument("--replication-port", type=_port_arg, default=0, help="TCP port for peers (0: any)")
    net(p, False)
    discover(p)
    p = sub.add_parser("seed", help="keep drives downloaded and online (serve and gateway seed them)")
    p.add_argument("keys", nargs="+", type=_key_arg, metavar="KEY")
    p = sub.add_parser("unseed", help="stop seeding a drive (its data stays)")
    p.add_argument("key", type=_key_arg)
    sub.add_parser("seeds", help="list the seeded drives with their status")
    for name, help_text in (("status", "what the node does: each drive's version, local part, peers"),
                            ("drives", "list the store's drives")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("forget", help="delete a drive's data from the store")
    p.add_argument("key", type=_key_arg)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = sub.add_parser("put", help="write a local file (- for standard input) into a writable drive")
    p.add_argument("local", type=_path_arg, metavar="LOCALFILE")
    for name, command_help in (("put", None), ("rm", "remove a file, symlink or empty folder from a "
                            "writable drive"), ("mkdir", "make a folder in a writable drive")):
        if name != "put":
            p = sub.add_parser(name, help=command_help)
        p.add_argument("keys", metavar="KEY", type=_keys_arg, help="the drive; hyper://KEY/PATH names the "
                       "path too")
        p.add_argument("path", nargs="?", default=None, help="the path in the drive (put: a path ending "
                       "in / takes the file's name)")
    return parser


def _finish_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Checks that need more than one argument: the path of ls/cat/stat/put/rm/mkdir, given as PATH or
    in the URL."""
    if args.command in ("ls", "cat", "stat", "put", "rm", "mkdir"):
        keys, url_path = args.keys
        if url_path is not None and args.path is not None:
            parser.error(f"{args.command}: a path given both ways (in hyper://KEY{url_path} and as "
                         f"{args.path!r}): give one")
        args.keys, args.path = keys, url_path or args.path
        if args.path is None:
            if args.command not in ("ls", "put"):
                parser.error(f"{args.command}: no PATH given (as an argument, or hyper://KEY/PATH)")
            args.path = "/"  # put: the file's name, in the drive's root


_NO_BOOTSTRAP = ("", 0)


def _bootstrap_arg(text: str) -> tuple[str, int]:
    return _NO_BOOTSTRAP if text == "none" else _peer_arg(text)


def _path_arg(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    return text


def _peer_arg(text: str) -> tuple[str, int]:
    try:
        return parse_peer(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _key_arg(text: str) -> bytes:
    try:
        return parse_key(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _keys_arg(text: str) -> tuple[list[bytes], str | None]:
    """``KEY[,KEY...]``, each maybe ``hyper://KEY``; the first may carry a path (``hyper://KEY/PATH``)."""
    keys: list[bytes] = []
    path: str | None = None
    for i, part in enumerate(p for p in text.split(",") if p.strip()):
        try:
            key, part_path = parse_url(part)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if part_path is not None and i > 0:
            raise argparse.ArgumentTypeError(f"only the first drive's URL may name a path: {part!r}")
        keys.append(key)
        path = path or part_path
    if not keys:
        raise argparse.ArgumentTypeError("no drive key given")
    return keys, path


def _port_arg(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (0 to 65535): {text!r}")
    return port


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds (0 or more): {text!r}")
    return value


def _timeout_arg(text: str) -> float | None:
    """Seconds; 0 (or inf) is None: no timeout."""
    value = _seconds(text)
    return None if value == 0 or math.isinf(value) else value


def _interval_arg(text: str) -> float:
    value = _seconds(text)
    if value == 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"not an interval (more than 0 seconds): {text!r}")
    return value


def _store_arg(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (say --store . for the current directory)")
    return text


COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "create": cmd_create, "share": cmd_share, "serve": cmd_serve, "clone": cmd_clone, "ls": cmd_ls,
    "cat": cmd_cat, "stat": cmd_stat, "ext": cmd_ext, "dht": cmd_dht, "mount": cmd_mount,
    "gateway": cmd_gateway, "seed": cmd_seed, "unseed": cmd_unseed, "seeds": cmd_seeds, "status": cmd_status,
    "drives": cmd_drives, "forget": cmd_forget, "put": cmd_put, "rm": cmd_rm, "mkdir": cmd_mkdir,
}
EXIT_FAILURE, EXIT_USAGE, EXIT_OUTPUT_CLOSED = 1, 2, 128 + signal.SIGPIPE


async def _run(args: argparse.Namespace) -> int | None:
    """Run the command; SIGINT/SIGTERM cancel it, so that every ``async with`` closes what it opened.
    Returns the signal that stopped it, if one did."""
    stopped_by: int | None = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            async def stop_on_signal() -> None:
                nonlocal stopped_by
                async for signum in signals:
                    stopped_by = signum
                    nursery.cancel_scope.cancel()
                    return

            async def command() -> None:
                if args.command == "demo":
                    await demo(args.dir, out)
                else:
                    await COMMANDS[args.command](args)
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_signal)
            nursery.start_soon(command)
    return stopped_by


def main(argv: list[str] | None = None) -> None:
    """The console script: run the command and exit with its code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _finish_args(parser, args)
    handler = logging.StreamHandler()
    handler.setFormatter(_LogFormat())
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    try:
        stopped_by = trio.run(_run, args)
    except BaseException as e:  # noqa: BLE001 - every way out becomes an exit code and one line
        raise SystemExit(_report(e, args.verbose)) from None
    raise SystemExit(128 + stopped_by if stopped_by else 0)


class _LogFormat(logging.Formatter):
    """What the node logs while a command runs, told apart from the command's own one-line failure:
    ``hypernode: warning: ...`` and ``hypernode: error: ...`` (info and debug lines, shown with -v,
    carry no level)."""

    def format(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        line = f"hypernode: {level}{record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _report(error: BaseException, verbose: bool) -> int:
    """Say what went wrong in one line on stderr (the one exception that stands for ``error``, however
    deep in exception groups); the exit code."""
    e = leaf(error)
    if isinstance(e, SystemExit):
        return e.code if isinstance(e.code, int) else EXIT_FAILURE
    if isinstance(e, KeyboardInterrupt):  # before the signal handler was in place
        return 128 + signal.SIGINT
    if isinstance(e, OutputClosed):
        with contextlib.suppress(OSError):  # nothing may be flushed to the closed pipe at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OUTPUT_CLOSED
    if isinstance(e, UsageError):
        _say(str(e))
        return EXIT_USAGE
    if isinstance(e, HypernodeError | OSError | ValueError):
        _say(_one_line(e))
        return EXIT_FAILURE
    if isinstance(e, trio.TooSlowError):
        _say("timed out waiting for peers")
        return EXIT_FAILURE
    if verbose:
        traceback.print_exception(error, file=sys.stderr)
    hint = "" if verbose else " (rerun with -v for the traceback)"
    _say(f"internal error: {type(e).__name__}: {_one_line(e)}{hint}")
    return EXIT_FAILURE


def _say(message: str) -> None:
    with contextlib.suppress(OSError):
        print(f"hypernode: {message}", file=sys.stderr, flush=True)


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror and not isinstance(e, HypernodeError):
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror}{where}"
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


if __name__ == "__main__":
    main()
