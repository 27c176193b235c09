"""Seeding a drive a JS hyperdrive 10 peer serves: ``hypernode seed KEY`` then ``serve`` downloads every
block of it and of the drive mounted in it, follows it live, and after a restart seeds it again; what
it got is then readable from the store with no peer at all."""

from __future__ import annotations

import json
import subprocess

import pytest
import trio

from interop.cliproc import CLI, CLIProcess, run_cli
from interop.jsproc import JSProcess
from interop.test_drive_interop import fixture_bytes
from tests.clitools import HYPERNODE

pytestmark = pytest.mark.interop

TIMEOUT = 30


def command(store, *args: str) -> CLIProcess:
    p = CLIProcess(store, *args)
    p.args[:len(CLI)] = [HYPERNODE]  # the installed console script
    return p


async def cli(store, *args: str):
    out = await trio.to_thread.run_sync(
        lambda: subprocess.run([HYPERNODE, "--store", str(store), *args], capture_output=True, text=True,
                               timeout=60))
    return out


async def seeded_status(store, key: str) -> dict:
    out = await cli(store, "status", "--json")
    assert out.returncode == 0, out.stderr
    return next(d for d in json.loads(out.stdout)["drives"] if d["key"] == key)


async def test_serve_seeds_a_js_drive_with_its_mount_live_and_after_a_restart(js, tmp_path):
    store = tmp_path / "store"
    async with JSProcess("drive_peer.js", "memory") as peer:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="seeded"))["key"]
        fixture = await peer.command("fixture-done", cmd="fixture", key=key)
        port = (await peer.command("listening", cmd="listen"))["port"]
        out = await cli(store, "seed", key)
        assert out.returncode == 0 and out.stdout.startswith(f"seeded {key}"), out.stderr

        async with command(store, "serve", "--port", "0", "--peer", f"127.0.0.1:{port}") as serve:
            await serve.line("listening on")
            with trio.fail_after(TIMEOUT):
                while True:  # every block of the drive, its content and its mount's
                    d = await seeded_status(store, key)
                    if d["local"] == 1.0 and d["version"] == fixture["version"] and d["blocks"] > 17:
                        break
                    await trio.sleep(0.2)
                assert d["seeded"] and d["peers"] and d["downloaded_bytes"] > 8 << 20
                assert d["peers"][0]["address"] == f"127.0.0.1:{port}"
                # live: JS writes, the seeding node downloads it without being asked
                await peer.command("written", cmd="write", key=key, path="/live.txt", text="while seeding")
                while (await seeded_status(store, key))["version"] <= fixture["version"]:
                    await trio.sleep(0.2)
            assert await serve.stop() == 130

        # the store alone (no peer): the mount and the big file are here
        out = await run_cli(store, "cat", key, "/mnt/inside.txt")
        assert out.returncode == 0 and out.stdout == "inside mount\n", out.stderr
        cat = [HYPERNODE, "--store", str(store), "cat", key, "/a/b/eight-m.bin"]
        out = await trio.to_thread.run_sync(lambda: subprocess.run(cat, capture_output=True, timeout=60))
        assert out.stdout == fixture_bytes(8 << 20)
        assert (await run_cli(store, "cat", key, "/live.txt")).stdout == "while seeding"

        # a restart seeds it again: what JS wrote meanwhile arrives
        await peer.command("written", cmd="write", key=key, path="/after.txt", text="after the restart")
        async with command(store, "serve", "--port", "0", "--peer", f"127.0.0.1:{port}") as serve:
            await serve.line("listening on")
            with trio.fail_after(TIMEOUT):
                while (await seeded_status(store, key))["local"] < 1.0 or \
                        (await seeded_status(store, key))["version"] < fixture["version"] + 2:
                    await trio.sleep(0.2)
            assert await serve.stop() == 130
        assert (await run_cli(store, "cat", key, "/after.txt")).stdout == "after the restart"
