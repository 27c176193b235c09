"""Python side of replication_bench.py, one role per process.

    repl_py.py serve DIR COUNT SIZE   -> prints {"key", "port"}, then serves until killed
    repl_py.py clone DIR KEY PORT COUNT -> downloads everything, prints {"seconds"}

DIR ``memory`` keeps the store in memory (``Corestore(None)``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from hypernode.corestore import Corestore  # noqa: E402
from hypernode.replication import replicator_of  # noqa: E402
from hypernode.replication.server import open_replication_server  # noqa: E402


def store_dir(directory: str) -> str | None:
    return None if directory == "memory" else directory


def block(i: int, size: int) -> bytes:
    return (i.to_bytes(8, "big") * (size // 8 + 1))[:size]


async def serve(directory: str, count: int, size: int) -> None:
    async with Corestore(store_dir(directory)) as store, open_replication_server(store) as store_net:
        feed = await store.get(name="bench")
        if feed.length < count:
            for start in range(feed.length, count, 1000):
                await feed.append([block(i, size) for i in range(start, min(count, start + 1000))])
        port = await store_net.listen()
        print(json.dumps({"key": feed.key.hex(), "port": port}), flush=True)
        await trio.sleep_forever()


async def clone(directory: str, key: str, port: int, count: int) -> None:
    async with Corestore(store_dir(directory)) as store, open_replication_server(store) as store_net:
        feed = await store.get(bytes.fromhex(key))
        start = time.perf_counter()
        await store_net.connect("127.0.0.1", port)
        await replicator_of(feed).update(count)
        await replicator_of(feed).download(0, count)
        seconds = time.perf_counter() - start
        assert feed.downloaded() == count
        print(json.dumps({"seconds": seconds}), flush=True)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "serve":
        trio.run(serve, sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        trio.run(clone, sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
