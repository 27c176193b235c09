"""A seeded drive is announced: once the drive's own writer is gone, a reader that knows nothing but the
key and a DHT bootstrap node still finds the seeding node and reads the drive from it (issue 20.3).
Everything runs as a user runs it: real ``hypernode`` processes on loopback, with a DHT node of their
own."""

from __future__ import annotations

import json
import time

from tests.clitools import Running, hypernode


def _local(store, key: str) -> float:
    out = hypernode("status", "--json", store=store)
    assert out.returncode == 0, out.stderr
    drive = next(d for d in json.loads(out.stdout)["drives"] if d["key"] == key)
    return float(drive["local"])


def test_a_seeded_drive_is_found_through_the_dht_after_its_writer_left(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("kept online by the seeder\n")
    with Running("dht", "--port", "0", "--bootstrap", "none") as dht:
        port = int(dht.wait_for("dht node listening on").split()[4].split(":")[1])
        boot = ["--bootstrap", f"127.0.0.1:{port}", "--no-local"]
        with Running("share", folder, *boot, store=tmp_path / "writer") as share:
            key = share.wait_for("sharing").split()[-1]
            share.wait_for("synced")
            out = hypernode("seed", key, store=tmp_path / "seeder")
            assert out.returncode == 0, out.stderr
            with Running("serve", "--port", "0", *boot, store=tmp_path / "seeder") as seeder:
                seeder.wait_for("listening on")
                deadline = time.monotonic() + 30
                while _local(tmp_path / "seeder", key) < 1.0:  # the seeder found the writer by the DHT
                    assert time.monotonic() < deadline, "the seeder never got the whole drive"
                    time.sleep(0.2)
                code, _ = share.stop()
                assert code == 130
                # the writer is gone: only the seeder's announcement can lead the reader to the drive
                out = hypernode("cat", key, "/a.txt", *boot, "--timeout", "20", store=tmp_path / "reader")
                assert out.returncode == 0, out.stderr
                assert out.stdout == "kept online by the seeder\n"
                seeder.stop()
        dht.stop()
