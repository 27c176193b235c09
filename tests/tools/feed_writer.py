"""A writer process for the crash tests: appends deterministic blocks forever, printing each
acknowledged length (after ``append`` returned) on its own line, until it is killed."""

from __future__ import annotations

import hashlib
import sys

import trio

from hypernode.feed import Feed


def block(i: int) -> bytes:
    """Block ``i``'s deterministic content: 0 to ~70 KiB derived from its index."""
    seed = hashlib.sha256(i.to_bytes(8, "big")).digest()
    size = (seed[0] * 277 + seed[1]) % 70_000 if seed[2] % 4 else seed[3]
    return (seed * (size // 32 + 1))[:size]


async def main(directory: str) -> None:
    async with await Feed.open(directory) as feed:
        n = 0
        while True:
            start = feed.length
            count = 1 + (n % 5)
            await feed.append([block(start + k) for k in range(count)])
            sys.stdout.write(f"{feed.length}\n")
            sys.stdout.flush()
            n += 1


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
