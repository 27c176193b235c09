"""The store commands through the installed ``hypernode`` console script, as a user runs them: put, rm,
mkdir in a writable drive; drives; seed, unseed, seeds and status, from the store and from a running
node (its control socket); forget, which deletes a drive's feed files and nothing else. Each failure
is a non-zero exit with one ``hypernode: ...`` line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor

from hypernode.crypto import discovery_key
from tests.clitools import HYPERNODE, Running, hypernode, one_line_error

KEY = "ab" * 32


def new_drive(store) -> str:
    out = hypernode("create", store=store)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_put_rm_mkdir(tmp_path):
    store = tmp_path / "store"
    key = new_drive(store)
    local = tmp_path / "notes.md"
    local.write_bytes(b"# notes\n" * 1000)
    out = hypernode("put", local, key, "/docs/notes.md", store=store)
    assert out.returncode == 0 and out.stdout.startswith(f"put /docs/notes.md (8000 bytes) into {key}"), out
    out = hypernode("put", local, f"hyper://{key}/", store=store)  # a folder path: the file's name
    assert out.returncode == 0 and "put /notes.md" in out.stdout, out.stderr
    piped = os_run_stdin(store, b"from stdin", "put", "-", f"hyper://{key}/in.txt")
    assert piped.returncode == 0, piped.stderr
    assert hypernode("cat", f"hyper://{key}/in.txt", store=store).stdout == "from stdin"
    assert hypernode("cat", key, "/docs/notes.md", store=store).stdout == "# notes\n" * 1000

    assert hypernode("mkdir", key, "/empty", store=store).returncode == 0
    listing = hypernode("ls", key, store=store).stdout.split()
    assert sorted(listing) == ["docs/", "empty/", "in.txt", "notes.md"]
    assert hypernode("rm", f"hyper://{key}/notes.md", store=store).returncode == 0
    assert hypernode("rm", key, "/empty", store=store).returncode == 0
    assert sorted(hypernode("ls", key, store=store).stdout.split()) == ["docs/", "in.txt"]

    in_store = [  # these open the store, one after another (each takes its lock)
        (("rm", key, "/nope"), 1, "No such file"),
        (("mkdir", key, "/in.txt"), 1, "EEXIST"),
        (("put", local, KEY, "/x"), 1, "not writable from this store"),
    ]
    before_store = [  # these fail before the store is opened: they run beside the others
        (("put", tmp_path / "missing.txt", key, "/x"), 1, "No such file"),
        (("put", local, "not-a-key", "/x"), 2, "not a drive key"),
        (("mkdir", key), 2, "no PATH given"),
    ]
    with ThreadPoolExecutor(4) as pool:
        early = [pool.submit(hypernode, *args, store=store) for args, _, _ in before_store]
        outs = [hypernode(*args, store=store) for args, _, _ in in_store] + [f.result() for f in early]
    for (args, code, says), out in zip(in_store + before_store, outs, strict=True):
        line = one_line_error(out)
        assert out.returncode == code and line.startswith("hypernode") and says in line, (args, line)


def test_put_keeps_the_executable_bit_and_clone_restores_it(tmp_path):
    store = tmp_path / "store"
    key = new_drive(store)
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    plain = tmp_path / "plain.txt"
    plain.write_text("text\n")
    plain.chmod(0o644)
    for local in (script, plain):
        out = hypernode("put", local, key, f"/{local.name}", store=store)
        assert out.returncode == 0, out.stderr
    modes = {name: json.loads(hypernode("stat", key, f"/{name}", store=store).stdout)["mode"]
             for name in ("run.sh", "plain.txt")}
    assert modes["run.sh"] & 0o111 and not modes["plain.txt"] & 0o111, modes
    out = hypernode("clone", key, tmp_path / "copy", "--timeout", "5", store=store)
    assert out.returncode == 0, out.stderr
    assert os.access(tmp_path / "copy" / "run.sh", os.X_OK)
    assert not os.access(tmp_path / "copy" / "plain.txt", os.X_OK)
    run = subprocess.run([tmp_path / "copy" / "run.sh"], capture_output=True, text=True, timeout=10)
    assert run.stdout == "hi\n"


def os_run_stdin(store, data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([HYPERNODE, "--store", str(store), *args], input=data, capture_output=True,
                          timeout=60)


def test_drives_status_and_seeds_from_the_store(tmp_path):
    store = tmp_path / "store"
    key = new_drive(store)
    out = hypernode("drives", store=store)
    assert out.returncode == 0 and out.stdout.startswith(f"{key}  version 1") and "(writable)" in out.stdout
    out = hypernode("seed", KEY, f"hyper://{KEY}", store=store)
    assert out.returncode == 0 and f"seeded {KEY}" in out.stdout, out.stderr
    out = hypernode("seeds", store=store)
    assert out.returncode == 0 and out.stdout.startswith(f"{KEY}  seeded (served when serve"), out.stdout
    st = json.loads(hypernode("status", "--json", store=store).stdout)
    assert st["running"] is False
    drives = {d["key"]: d for d in st["drives"]}
    assert drives[KEY]["seeded"] and not drives[key]["seeded"] and drives[key]["writable"]
    assert drives[KEY]["version"] == 0 and drives[KEY]["peers"] == []
    out = hypernode("unseed", KEY, store=store)
    assert out.returncode == 0 and out.stdout.startswith(f"unseeded {KEY}")
    out = hypernode("seeds", store=store)
    assert out.stdout.startswith("no drive is seeded")
    with ThreadPoolExecutor(2) as pool:  # (no store, or no store used: these may run at once)
        nowhere = pool.submit(hypernode, "status", store=tmp_path / "nowhere")
        bad = pool.submit(hypernode, "seed", "xyz", store=store).result()
    assert nowhere.result().returncode == 1 and "no store at" in one_line_error(nowhere.result())
    assert not (tmp_path / "nowhere").exists()  # asking made no store
    assert bad.returncode == 2 and "not a drive key" in one_line_error(bad)


def test_status_seed_and_unseed_through_the_running_node(tmp_path):
    store = tmp_path / "store"
    key = new_drive(store)
    with Running("serve", "--port", "0", store=store) as serve:
        port = serve.port()
        st = json.loads(hypernode("status", "--json", store=store).stdout)
        assert st["running"] and st["pid"] == serve.p.pid and st["port"] == port
        assert [d["key"] for d in st["drives"]] == [key]
        out = hypernode("seed", KEY, store=store)  # the store is in use: the node does it
        assert out.returncode == 0 and out.stdout.startswith(f"seeding {KEY} (by the running node, pid "), out
        assert f"{KEY}  seeding" in hypernode("seeds", store=store).stdout
        text = hypernode("status", store=store).stdout
        assert text.startswith(f"node pid {serve.p.pid} has {store}, replicating on 127.0.0.1:{port}")
        assert f"{KEY}  version 0" in text and "(seeded)" in text
        assert hypernode("unseed", KEY, store=store).returncode == 0
        assert "not seeded" in one_line_error(hypernode("unseed", KEY, store=store))
        control = os.path.join(store, "hypernode.sock")
        assert stat.S_IMODE(os.stat(control).st_mode) == 0o600  # only the store's owner may ask
        # what writes data is refused, as on any store in use
        out = hypernode("mkdir", key, "/x", store=store)
        assert "is in use by another process" in one_line_error(out)
        out = hypernode("forget", key, "--yes", store=store)
        assert "is in use by another process" in one_line_error(out)
        code, _ = serve.stop()
        assert code == 130
    assert not os.path.exists(os.path.join(store, "hypernode.sock"))  # gone with the node
    assert "seeds" in json.loads((store / "seeds.json").read_text())


def test_forget_deletes_the_drives_feeds_and_nothing_else(tmp_path):
    store = tmp_path / "store"
    key = new_drive(store)
    keep = new_drive(store)
    (tmp_path / "f").write_bytes(b"x" * 100_000)
    assert hypernode("put", tmp_path / "f", key, "/f", store=store).returncode == 0
    assert hypernode("seed", key, store=store).returncode == 0
    before = {p for p in store.rglob("*")}
    feed_dirs = {p.parent for p in store.rglob("key")}
    assert len(feed_dirs) == 4  # two drives, each a metadata and a content feed

    out = os_run_stdin(store, b"n\n", "forget", key)
    assert out.returncode == 1 and b"not forgotten" in out.stderr and b"[y/N]" in out.stderr
    assert {p for p in store.rglob("*")} == before
    out = os_run_stdin(store, b"", "forget", key)  # no answer at all: no
    assert out.returncode == 1 and {p for p in store.rglob("*")} == before

    dk = discovery_key(bytes.fromhex(key)).hex()
    stray = store / dk[:2] / dk[2:4] / dk  # the drive's metadata feed
    assert stray in feed_dirs
    (stray / "notes-of-mine.txt").write_text("not hypernode's")
    out = os_run_stdin(store, b"y\n", "forget", key)
    assert out.returncode == 0 and out.stdout.decode().startswith(f"forgot {key}: "), out.stderr
    assert (stray / "notes-of-mine.txt").read_text() == "not hypernode's"  # not ours: it stays
    gone = before - {p for p in store.rglob("*")}
    parents = {d.parent for d in feed_dirs} | {d.parent.parent for d in feed_dirs}  # ab/cd/, ab/: if emptied
    assert all(p in parents or any(p.is_relative_to(d) for d in feed_dirs) for p in gone), gone
    assert not any(p.is_relative_to(store / dk[:2] / dk[2:4] / dk) and p.name == "notes-of-mine.txt"
                   for p in gone)
    kept = discovery_key(bytes.fromhex(keep)).hex()
    assert not any(kept in str(p) for p in gone)  # the other drive is untouched
    drives = hypernode("drives", store=store).stdout
    assert key not in drives and keep in drives
    assert not json.loads((store / "seeds.json").read_text())["seeds"]
    out = hypernode("forget", key, "--yes", store=store)
    assert "is not in" in one_line_error(out)
    out = hypernode("forget", keep, "--yes", store=store)
    assert out.returncode == 0
    assert hypernode("drives", store=store).stdout == ""
    assert (store / "master_key").exists()
