"""The ``hypernode`` command never exits 0 after a failure: every failure is one line ``hypernode: ...`` on
stderr with a non-zero exit code, signals exit 128 + the signal after a clean close, arguments are
checked by argparse (exit 2), errors name their cause, ``cat | head`` is quiet, and the commands that
find peers agree on their flags. Every test runs the real console script in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import trio

from hypernode.node import Node
from tests.clitools import HYPERNODE, Running, hypernode, one_line_error


def dead_port() -> int:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_drive(store: Path, files: dict[str, bytes]) -> str:
    """A drive in ``store`` holding ``files``; its key."""
    async def fill() -> str:
        async with Node(store, port=None) as node:
            drive = await node.create_drive()
            for path, data in files.items():
                await drive.write_file(path, data)
            return drive.key.hex()

    return trio.run(fill)


# -- the failures reported in issue 15: each exited 0 with no output ----------------------------------


def test_share_with_a_bad_key_fails(tmp_path):
    out = hypernode("share", tmp_path, "--key", "zzz", store=tmp_path / "s")
    assert out.returncode == 1
    assert one_line_error(out) == "hypernode: not a drive key (64 hex digits or 52 z-base-32 letters): 'zzz'"


def test_share_with_a_key_not_writable_here_fails(tmp_path):
    key = make_drive(tmp_path / "other", {"/a": b"a"})
    out = hypernode("share", tmp_path, "--key", key, store=tmp_path / "s")
    assert out.returncode != 0
    line = one_line_error(out)
    assert line.startswith("hypernode: ") and "not writable" in line and key in line


def test_share_with_a_negative_interval_is_a_usage_error(tmp_path):
    for interval in ("-1", "0", "nan"):
        out = hypernode("share", tmp_path, "--interval", interval, store=tmp_path / "s")
        assert out.returncode == 2
        assert "argument --interval" in one_line_error(out)


def test_ext_send_with_no_peer_fails_after_the_timeout(tmp_path):
    key = "ab" * 32
    out = hypernode("ext", "send", key, "chat", "x", "--timeout", "1", store=tmp_path / "s")
    assert out.returncode == 1
    assert one_line_error(out) == (f"hypernode: no peer connected within 1 s to ask for drive {key} "
                                   f"(none to connect to, no discovery)")


# -- argument checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["serve", "--port", "65536"], ["serve", "--port", "-1"], ["share", ".", "--port", "99999"],
    ["dht", "--port", "70000"], ["ext", "listen", "ab" * 32, "chat", "--port", "x"],
    ["ls", "ab" * 32, "--timeout", "-1"], ["cat", "ab" * 32, "/a", "--timeout", "-0.5"],
    ["stat", "ab" * 32, "/a", "--timeout", "nan"], ["clone", "ab" * 32, "dir", "--timeout", "-3"],
    ["serve", "--timeout", "-1"], ["ext", "send", "ab" * 32, "n", "m", "--timeout", "-1"],
    ["--store", "", "create"], ["ls", "zz"], ["ext", "send", "zz", "chat", "m"],
    ["cat", f"hyper://{'ab' * 32}/a", "/b"], ["cat", "ab" * 32], ["ls", f"{'ab' * 32},hyper://{'cd' * 32}/x"],
])
def test_bad_arguments_are_usage_errors(tmp_path, args):
    out = hypernode(*args, store=tmp_path / "s")
    assert out.returncode == 2, out
    line = one_line_error(out)
    assert line.startswith("hypernode") and "--help" in line
    assert not (tmp_path / "s").exists()  # nothing was opened


def test_port_65535_and_timeout_0_are_accepted(tmp_path):
    key = make_drive(tmp_path / "s", {"/a.txt": b"alpha"})
    out = hypernode("cat", key, "/a.txt", "--timeout", "0", store=tmp_path / "s")
    assert out.returncode == 0 and out.stdout == "alpha", out.stderr


def test_version():
    out = subprocess.run([HYPERNODE, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == f"hypernode {version('hypernode')}"


# -- errors name their cause -------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["ls", "{key}"], ["cat", "{key}", "/a"], ["stat", "{key}", "/a"],
                                     ["ext", "send", "{key}", "chat", "hi"]])
def test_an_unreachable_peer_says_connection_refused(tmp_path, command):
    port = dead_port()
    key = "ab" * 32
    args = [a.format(key=key) for a in command]
    out = hypernode(*args, "--peer", f"127.0.0.1:{port}", "--timeout", "1", store=tmp_path / "s")
    assert out.returncode == 1
    assert one_line_error(out) == f"hypernode: cannot reach 127.0.0.1:{port}: connection refused"


def test_a_key_no_peer_has_says_so(tmp_path):
    make_drive(tmp_path / "server", {"/a": b"a"})
    with Running("serve", store=tmp_path / "server") as server:
        port = server.port()
        missing = "cd" * 32
        out = hypernode("ls", missing, "--peer", f"127.0.0.1:{port}", "--timeout", "1",
                        store=tmp_path / "reader")
        assert out.returncode == 1
        assert one_line_error(out) == f"hypernode: no peer has drive {missing} (1 connected peer asked)"
        server.stop()


def test_a_peer_that_does_not_speak_the_protocol_says_so(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.Popen([HYPERNODE, "--store", str(tmp_path / "s"), "ls", "ab" * 32, "--peer",
                                 f"127.0.0.1:{port}", "--timeout", "2"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        s.settimeout(30)
        for _ in range(2):  # an HTTP server, say: it answers nonsense and closes
            conn, _ = s.accept()
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4)
            conn.close()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == ""
    assert err.startswith(f"hypernode: 127.0.0.1:{port}: connected, but the connection failed: ")
    assert len(err.splitlines()) == 1


def test_a_port_that_cannot_be_listened_on_says_so(tmp_path):
    with socket.socket() as s:  # a port in use
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        out = hypernode("serve", "--port", busy, store=tmp_path / "s")
    assert out.returncode == 1
    assert one_line_error(out) == f"hypernode: cannot listen on 127.0.0.1:{busy}: Address already in use"
    out = hypernode("dht", "--host", "no-such-host.invalid", "--port", "0", "--bootstrap", "none")
    assert out.returncode == 1
    assert one_line_error(out).startswith("hypernode: cannot listen on no-such-host.invalid:0 (UDP): ")


def test_a_missing_file_is_one_line(tmp_path):
    key = make_drive(tmp_path / "s", {"/a": b"a"})
    out = hypernode("cat", key, "/nope", store=tmp_path / "s")
    assert out.returncode == 1 and "No such file" in one_line_error(out)


# -- cat | head --------------------------------------------------------------------------------------


def test_cat_into_a_closed_pipe_exits_quietly(tmp_path):
    key = make_drive(tmp_path / "s", {"/big.bin": os.urandom(8 * 1024 * 1024)})
    proc = subprocess.Popen([HYPERNODE, "--store", str(tmp_path / "s"), "cat", key, "/big.bin"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(1)) == 1  # as `| head -c1`: one byte, then the reader goes away
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 141  # 128 + SIGPIPE, what the shell shows for `cat` killed by it
    assert err == b""


def test_cat_piped_to_head_in_a_shell(tmp_path):
    key = make_drive(tmp_path / "s", {"/big.bin": b"x" * (4 * 1024 * 1024)})
    out = subprocess.run(["bash", "-c", f'"{HYPERNODE}" --store "{tmp_path / "s"}" cat {key} /big.bin | '
                                        f'head -c1; echo " ${{PIPESTATUS[0]}}"'],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout == "x 141\n" and out.stderr == ""


# -- signals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("command", ["serve", "ext-listen", "dht", "ls-waiting"])
def test_a_signal_exits_128_plus_its_number_after_closing(tmp_path, sig, command):
    key = make_drive(tmp_path / "s", {"/a": b"a"})
    silent = socket.socket()  # accepts connections and never speaks: a reader waits on it
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        if command == "serve":
            proc = Running("serve", store=tmp_path / "s")
            proc.wait_for("serving")
        elif command == "ext-listen":
            proc = Running("ext", "listen", key, "chat", store=tmp_path / "s")
            proc.wait_for("waiting for")
        elif command == "dht":
            proc = Running("dht", "--port", "0", "--bootstrap", "none")
            proc.wait_for("dht node listening")
        else:
            proc = Running("ls", "cd" * 32, "--peer", f"127.0.0.1:{silent.getsockname()[1]}",
                           "--timeout", "0", store=tmp_path / "reader")
            silent.settimeout(30)
            silent.accept()[0].close()  # it has connected: it is waiting on the peer, signals handled
        with proc:
            code, err = proc.stop(sig)
        assert code == 128 + sig, err
        assert "Traceback" not in err and err.strip() == "", err
    finally:
        silent.close()
    if command != "dht":  # the store was closed cleanly: it opens, and the lock is free
        assert hypernode("ls", key, "/", store=tmp_path / "s").stdout == "a\n"


# -- internal errors ---------------------------------------------------------------------------------


BUGGY = """
import sys
import hypernode.cli as cli

async def buggy(args):
    try:
        raise TypeError("a bug deep down")
    except TypeError as e:
        raise ExceptionGroup("outer", [ExceptionGroup("inner", [e])])

cli.COMMANDS["create"] = buggy
cli.main(sys.argv[1:])
"""


def test_an_internal_error_is_one_line_with_a_hint(tmp_path):
    out = subprocess.run([sys.executable, "-c", BUGGY, "--store", str(tmp_path / "s"), "create"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert one_line_error(out) == ("hypernode: internal error: TypeError: a bug deep down "
                                   "(rerun with -v for the traceback)")
    out = subprocess.run([sys.executable, "-c", BUGGY, "-v", "--store", str(tmp_path / "s"), "create"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" in out.stderr and "in buggy" in out.stderr
    assert out.stderr.strip().splitlines()[-1] == "hypernode: internal error: TypeError: a bug deep down"


# -- flags agree: hyper:// URLs, --bootstrap and --no-local ------------------------------------------


def test_every_command_taking_a_key_accepts_a_hyper_url(tmp_path):
    key = make_drive(tmp_path / "s", {"/docs/a.txt": b"alpha"})
    url = f"hyper://{key}"
    s = tmp_path / "s"
    assert hypernode("ls", url, store=s).stdout == "docs/\n"
    assert hypernode("ls", f"{url}/docs", store=s).stdout == "a.txt\n"
    assert hypernode("ls", f"{url}/", "/docs", store=s).stdout == "a.txt\n"
    assert hypernode("cat", f"{url}/docs/a.txt", store=s).stdout == "alpha"
    assert '"size": 5' in hypernode("stat", f"{url}/docs/a.txt", store=s).stdout
    with Running("serve", store=s) as server:
        port = server.port()
        out = hypernode("clone", f"{url}/", tmp_path / "clone", "--peer", f"127.0.0.1:{port}",
                        "--timeout", "20", store=tmp_path / "c")
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "clone" / "docs" / "a.txt").read_bytes() == b"alpha"
        out = hypernode("ext", "send", url, "chat", "hi", "--peer", f"127.0.0.1:{port}", "--timeout", "20",
                        store=tmp_path / "e")
        assert out.returncode == 0 and out.stdout == "sent to 1 peer(s)\n", out.stderr
        server.stop()


def test_ls_cat_stat_ext_find_peers_through_the_dht(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("found through the DHT\n")
    with Running("dht", "--port", "0", "--bootstrap", "none") as dht:
        port = int(dht.wait_for("dht node listening on").split()[4].split(":")[1])
        boot = ["--bootstrap", f"127.0.0.1:{port}", "--no-local"]
        with Running("share", folder, *boot, store=tmp_path / "a") as share:
            key = share.wait_for("sharing").split()[-1]
            share.wait_for("synced")
            out = hypernode("cat", key, "/a.txt", *boot, "--timeout", "20", store=tmp_path / "b")
            assert out.returncode == 0 and out.stdout == "found through the DHT\n", out.stderr
            out = hypernode("ls", key, *boot, "--timeout", "20", store=tmp_path / "c")
            assert out.stdout == "a.txt\n", out.stderr
            out = hypernode("stat", key, "/a.txt", *boot, "--timeout", "20", store=tmp_path / "d")
            assert '"size": 22' in out.stdout, out.stderr
            out = hypernode("ext", "send", key, "chat", "hi", *boot, "--timeout", "20", store=tmp_path / "e")
            assert out.returncode == 0 and out.stdout == "sent to 1 peer(s)\n", out.stderr
            share.stop()
        dht.stop()


def test_log_lines_say_their_level_and_an_offline_dht_is_one_warning(tmp_path):
    """What the node logs is told apart from the command's one-line failure: a warning says
    ``hypernode: warning:``, and bootstrap nodes that do not resolve (as offline, or here) make one
    warning line, not one per node."""
    key = "ab" * 32
    out = hypernode("ls", key, "--timeout", "0.5", "--bootstrap", "no-such-host.invalid:49737",
                    "--bootstrap", "nor-this.invalid:49737", "--no-local", store=tmp_path / "store")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1, out.stderr
    warnings = [line for line in lines if "bootstrap" in line]
    assert warnings == [
        "hypernode: warning: no DHT bootstrap node resolves (no-such-host.invalid, nor-this.invalid): "
        "peers are found only on the local network and through --peer"], lines
    assert lines[-1].startswith("hypernode: ") and "warning" not in lines[-1], lines
