"""A store is used by one process at a time (hypernode.storelock): a second opener, in Python or through
the command, gets a clear error naming the holder's pid and touches nothing; a lock left by a killed
process does not block; ls/cat/stat read a store in use through the node that has it. Secrets
(``master_key``, ``secret_key``) are written 0600 whatever the umask."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import hypernode
from hypernode.corestore import Corestore
from hypernode.errors import CorruptStorageError, StoreLockedError
from hypernode.node import Node
from tests.clitools import Running, one_line_error
from tests.clitools import hypernode as run


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``directory``: its bytes, mtime (ns) and mode."""
    out = {}
    for p in sorted(directory.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(directory))] = (p.read_bytes() if p.is_file() else b"", st.st_mtime_ns,
                                              st.st_mode)
    return out


HOLDER = """
import sys, time, trio
from hypernode.corestore import Corestore

async def main():
    async with Corestore(sys.argv[1]) as store:
        feed = await store.get(name="x")
        await feed.append(b"held")
        print("holding", flush=True)
        await trio.sleep_forever()

trio.run(main)
"""

BARE_LOCK = """
import fcntl, os, sys, time
fd = os.open(os.path.join(sys.argv[1], "hypernode.lock"), os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, bytes.fromhex(sys.argv[2]) if len(sys.argv) > 2 else b'{"pid": %d}' % os.getpid())
print("holding", flush=True)
time.sleep(600)
"""


class Holder:
    """A Python process holding a store (or only its lock file)."""

    def __init__(self, directory: Path, script: str = HOLDER, *args: str) -> None:
        self.p = subprocess.Popen([sys.executable, "-c", script, str(directory), *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.p.stdout is not None and self.p.stdout.readline() == "holding\n", self.p.stderr

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.p.kill()
        self.p.communicate()


# -- in Python ---------------------------------------------------------------------------------------


async def test_a_second_corestore_on_a_locked_directory_raises(tmp_path):
    assert hypernode.StoreLockedError is StoreLockedError
    async with Corestore(tmp_path / "s") as store:
        await (await store.get(name="a")).append(b"a")
        with pytest.raises(StoreLockedError) as info:
            Corestore(tmp_path / "s")
        assert info.value.pid == os.getpid() and info.value.address is None
        assert str(info.value) == f"store {tmp_path / 's'} is in use by another process (pid {os.getpid()})"
        with pytest.raises(StoreLockedError):
            async with Node(tmp_path / "s"):
                pass
    async with Corestore(tmp_path / "s") as store:  # closed: free again
        assert (await store.get(name="a")).length == 1


async def test_a_listening_node_says_where_it_serves(tmp_path):
    async with Node(tmp_path / "s") as node:
        with pytest.raises(StoreLockedError) as info:
            Corestore(tmp_path / "s")
        assert info.value.address == ("127.0.0.1", node.port)


def test_the_lock_comes_before_anything_is_written(tmp_path):
    store = tmp_path / "s"
    store.mkdir()
    with Holder(store, BARE_LOCK) as holder:
        before = snapshot(store)
        with pytest.raises(StoreLockedError) as info:
            Corestore(store)
        assert info.value.pid == holder.p.pid
        assert snapshot(store) == before and not (store / "master_key").exists()


@pytest.mark.parametrize("content", [b"", b"garbage", b'{"pid": "7"}', b"[1, 2]", b"\xff\xfe",
                                     b'{"pid": 7, "host": 1, "port": 99999}', b'{"pid": 7, "port": 80}'])
def test_a_lock_file_that_says_nonsense_still_locks(tmp_path, content):
    store = tmp_path / "s"
    store.mkdir()
    with Holder(store, BARE_LOCK, content.hex()):
        with pytest.raises(StoreLockedError) as info:
            Corestore(store)
    assert info.value.address is None and info.value.pid in (None, 7)
    assert str(info.value).endswith("(pid 7)" if info.value.pid else "(pid unknown)")


def test_a_damaged_master_key_is_reported_not_replaced(tmp_path):
    (tmp_path / "master_key").write_bytes(b"short")
    with pytest.raises(CorruptStorageError, match="a master key is 32 bytes"):
        Corestore(tmp_path)
    assert (tmp_path / "master_key").read_bytes() == b"short"
    Corestore(tmp_path / "fresh")  # the lock of the failed open was released: the next one works
    with pytest.raises(CorruptStorageError):
        Corestore(tmp_path)


# -- through the command -----------------------------------------------------------------------------


def test_commands_on_a_store_in_use_fail_and_touch_nothing(tmp_path):
    store = tmp_path / "s"
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    with Running("share", folder, "--interval", "60", store=store) as share:
        key = share.wait_for("sharing").split()[-1]
        share.wait_for("synced")
        before = snapshot(store)
        expected = f"hypernode: store {store} is in use by another process (pid {share.p.pid})"
        for args in (["create"], ["serve"], ["share", folder], ["share", folder, "--key", key],
                     ["clone", key, tmp_path / "clone", "--timeout", "1"], ["ext", "listen", key, "chat"],
                     ["ext", "send", key, "chat", "hi", "--timeout", "1"]):
            out = run(*args, store=store)
            assert out.returncode == 1, (args, out)
            assert one_line_error(out) == expected, args
        assert snapshot(store) == before
        # read-only commands work through the running node
        assert run("ls", key, store=store).stdout == "a.txt\n"
        assert run("cat", key, "/a.txt", store=store).stdout == "alpha"
        out = run("stat", key, "/a.txt", store=store)
        assert out.returncode == 0 and '"size": 5' in out.stdout, out.stderr
        assert snapshot(store) == before
        code, err = share.stop()
        assert code == 130, err


def test_read_only_commands_say_so_when_the_holder_does_not_serve(tmp_path):
    store = tmp_path / "s"
    with Holder(store) as holder:
        before = snapshot(store)
        out = run("ls", "ab" * 32, store=store)
        assert out.returncode == 1
        assert one_line_error(out) == (f"hypernode: store {store} is in use by another process "
                                       f"(pid {holder.p.pid}), which does not serve it: "
                                       f"try again when it ends")
        assert snapshot(store) == before


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    store = tmp_path / "s"
    key = run("create", store=store).stdout.strip()
    server = Running("serve", store=store)
    server.wait_for("serving")
    server.p.send_signal(signal.SIGKILL)
    server.p.communicate()
    assert server.p.returncode == -signal.SIGKILL
    assert f'"pid": {server.p.pid}' in (store / "hypernode.lock").read_text()  # left behind, stale
    out = run("ls", key, store=store)
    assert out.returncode == 0, out.stderr
    with Running("serve", store=store) as again:
        assert again.wait_for("serving").split()[1] == key
        assert f'"pid": {again.p.pid}' in (store / "hypernode.lock").read_text()
        again.stop()


def test_two_shares_of_one_drive_cannot_both_write_it(tmp_path):
    store = tmp_path / "s"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "from-a.txt").write_text("a")
    (b / "from-b.txt").write_text("b")
    key = run("create", store=store).stdout.strip()
    with Running("share", a, "--key", key, store=store) as first:
        first.wait_for("synced")
        out = run("share", b, "--key", key, store=store)
        assert out.returncode == 1 and "is in use by another process" in one_line_error(out)
        first.stop()
    assert run("ls", key, store=store).stdout == "from-a.txt\n"


# -- file modes --------------------------------------------------------------------------------------


SECRETS = """
import os, sys, trio
from hypernode.corestore import Corestore
from hypernode.feed import Feed

os.umask(0)  # as permissive as it gets

async def main():
    async with Corestore(sys.argv[1]) as store:
        await (await store.get(secret_key=None, name="n")).append(b"x")
    async with await Feed.open(sys.argv[2]) as feed:  # a feed keeping its own secret_key file
        await feed.append(b"y")

trio.run(main)
"""


def test_secrets_are_written_0600_whatever_the_umask(tmp_path):
    subprocess.run([sys.executable, "-c", SECRETS, str(tmp_path / "store"), str(tmp_path / "feed")],
                   check=True, timeout=60)
    assert stat.S_IMODE((tmp_path / "store" / "master_key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "feed" / "secret_key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "feed" / "key").stat().st_mode) == 0o644  # not a secret
    assert not (tmp_path / "store" / "master_key.tmp").exists()


async def test_an_older_secret_key_file_is_narrowed_to_0600(tmp_path):
    from hypernode.feed import Feed

    async with await Feed.open(tmp_path / "feed") as feed:
        await feed.append(b"y")
    secret = tmp_path / "feed" / "secret_key"
    secret.chmod(0o644)  # as an older version (or a JS hypercore) left it
    async with await Feed.open(tmp_path / "feed") as feed:
        assert feed.writable
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
