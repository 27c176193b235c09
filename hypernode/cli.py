"""The ``hypernode`` command. For now it has one subcommand, ``demo``: a short tour of signed feeds,
proofs and live replication between two stores over TCP, read back by JS hypercore."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import trio

from hypernode import crypto
from hypernode.corestore import Corestore
from hypernode.errors import HypernodeError, VerificationError
from hypernode.feed import Feed

INTEROP = Path(__file__).resolve().parent.parent / "interop"


async def demo(directory: str | None) -> None:
    root = Path(directory or tempfile.mkdtemp(prefix="hypernode-demo-"))
    print(f"feeds live under {root}")
    async with await Feed.open(root / "writer") as writer:
        first = await writer.append([b"hello", b"from", b"hypernode"])
        await writer.append(b"x" * 65536)
        print(f"writer   key {writer.key.hex()}")
        print(f"         discovery key {writer.discovery_key.hex()}")
        print(f"         appended from block {first}: length {writer.length}, {writer.byte_length} bytes")

        async with await Feed.open(root / "reader", key=writer.key) as reader:
            for i in (2, 0):
                await reader.put(i, await writer.get(i), writer.proof(i, digest=reader.tree.digest(2 * i)))
            print(f"reader   verified blocks 2 and 0 through proofs: length {reader.length}, "
                  f"has {[i for i in range(reader.length) if reader.has(i)]}, "
                  f"block 2 = {(await reader.get(2)).decode()!r}")
            forged = b"h3llo"
            try:
                await reader.put(1, forged, writer.proof(1, digest=reader.tree.digest(2)))
            except VerificationError as e:
                print(f"reader   refused a tampered block 1: {e}")
            ok = crypto.verify(crypto.signable(writer.roots(), writer.length), writer.signature() or b"",
                               writer.key)
            print(f"writer   signature over the roots of length {writer.length} verifies: {ok}")

    # two stores replicating live over loopback TCP
    async with Corestore(root / "store-a") as a, Corestore(root / "store-b") as b:
        feed = await a.get(name="demo")
        await feed.append([b"block %d" % i for i in range(1000)])
        port = await a.listen("127.0.0.1", 0)
        copy = await b.get(feed.key)
        await b.connect("127.0.0.1", port)
        with trio.fail_after(30):
            await copy.update(1000)
            await copy.download(0, 1000)
        print(f"store b  cloned {copy.length} blocks from store a over TCP (127.0.0.1:{port}), "
              f"every block verified; last = {(await copy.get(999)).decode()!r}")
        await feed.append(b"appended live")
        with trio.fail_after(10):
            print(f"store b  got the live append: {(await copy.get(1000)).decode()!r}")

    if shutil.which("node") and (INTEROP / "node_modules" / "hypercore").is_dir():
        proc = subprocess.run(["node", "js/feed_tool.js", "read", str(root / "writer"), writer.key.hex()],
                              cwd=INTEROP, capture_output=True, text=True, timeout=60)
        if proc.returncode == 0:
            out = json.loads(proc.stdout)
            print(f"JS hypercore 9 opened the Python feed: length {out['length']}, "
                  f"block 2 = {bytes.fromhex(out['blocks'][2]).decode()!r}")
        else:
            print(f"JS hypercore could not read the feed:\n{proc.stderr}", file=sys.stderr)
            raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hypernode", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="a short demonstration of signed feeds")
    p_demo.add_argument("--dir", help="where to keep the demo's feeds (default: a new temp dir)")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            trio.run(demo, args.dir)
    except HypernodeError as e:
        print(f"hypernode: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
