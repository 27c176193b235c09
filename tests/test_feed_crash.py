"""Crash consistency: SIGKILL a writer process at random moments, 50 times; after each kill the feed
reopens at a consistent length no shorter than the last acknowledged one, and every block verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from hypernode import crypto
from hypernode.feed import Feed

sys.path.insert(0, str(Path(__file__).parent / "tools"))
from feed_writer import block  # noqa: E402

WRITER = Path(__file__).parent / "tools" / "feed_writer.py"
KILLS = int(os.environ.get("HYPERNODE_APPEND_KILLS", "50"))  # more for the report


async def test_sigkill_during_appends_loses_nothing_acknowledged(tmp_path: Path):
    rnd = random.Random(2024)
    directory = tmp_path / "feed"
    checked_up_to = 0
    bytes_up_to = 0
    lengths = []
    for _ in range(KILLS):
        proc = subprocess.Popen([sys.executable, str(WRITER), str(directory)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # wait until it has started appending (or a short time more), then kill at a random moment
        first = proc.stdout.readline() if proc.stdout else ""
        assert first.strip().isdigit(), proc.stderr.read() if proc.stderr else ""
        time.sleep(rnd.uniform(0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        acknowledged = int((first + out).split()[-1])

        async with await Feed.open(directory) as feed:
            assert feed.length >= acknowledged, (feed.length, acknowledged)
            assert crypto.verify(crypto.signable(feed.roots(), feed.length), feed.signature(), feed.key)
            # every new block reads back, verified against the tree, with the right content
            for i in range(checked_up_to, feed.length):
                assert await feed.get(i) == block(i), i
                bytes_up_to += len(block(i))
            # a sample of older blocks still verifies too
            for i in rnd.sample(range(feed.length), min(20, feed.length)):
                assert await feed.get(i) == block(i), i
            assert feed.byte_length == bytes_up_to
            checked_up_to = feed.length
            lengths.append(feed.length)
    assert lengths == sorted(lengths) and lengths[-1] > lengths[0]
    print(f"\n{KILLS} kills during appends: {lengths[-1]} blocks appended, none acknowledged lost")
