"""CI installs what users install: build the wheel, install it in a fresh virtualenv outside the
checkout, and use it there.

    .venv/bin/python tests/tools/wheel_smoke.py      # (make wheel-smoke; make test runs it)

1. Builds the wheel from a copy of what the build reads (pyproject.toml, README.md, hypernode/), with pip
   and the build backend pyproject.toml names, as ``pip install .`` does.
2. Checks its contents: every module of hypernode/ (the generated hypernode/messages/ too) and py.typed,
   and nothing else (no tests, interop, protocol, .proto).
3. Makes a fresh virtualenv in a temporary folder and pip-installs the wheel there (its dependencies come
   from the package index).
4. From a folder outside the checkout, with that virtualenv's programs: ``import hypernode`` (and the
   top-level API; a hypercore 11 store written, reopened and read), ``hypernode --help``, then
   ``hypernode create``, ``share`` of a real folder and
   ``clone`` of it over loopback into another store, comparing every cloned file's bytes.

Exits 0 and prints the time each step took, or prints ``wheel smoke: ...`` naming what failed and exits 1.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300


class SmokeError(Exception):
    pass


def run(args: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = TIMEOUT,
        what: str = "") -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise SmokeError(f"{what or args[0]} exited {proc.returncode}:\n"
                         f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return proc


def build_wheel(tmp: Path, env: dict[str, str]) -> Path:
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "hypernode", src / "hypernode",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    dist = tmp / "dist"
    proc = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, src], cwd=tmp,
               env=env, what="pip wheel")
    if "deprecat" in (proc.stdout + proc.stderr).lower():
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "eprecat" in line]
        raise SmokeError("the build warns of a deprecation:\n" + "\n".join(lines[:10]))
    wheels = list(dist.glob("hypernode-*.whl"))
    if len(wheels) != 1:
        raise SmokeError(f"expected one wheel in {dist}, found {wheels}")
    return wheels[0]


def check_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    files = {n for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "hypernode").rglob("*.py")
                if "__pycache__" not in p.parts}
    expected.add("hypernode/py.typed")
    protos = (ROOT / "protocol").glob("*.proto")
    messages = {f"hypernode/messages/{p.stem.replace('-', '_')}.py" for p in protos}
    if not messages or not messages <= files:
        raise SmokeError(f"the wheel lacks generated message modules: {sorted(messages - files)}")
    if files != expected:
        raise SmokeError(f"the wheel's files differ from hypernode/: missing {sorted(expected - files)}, "
                         f"extra {sorted(files - expected)}")


def check_installed(venv: Path, work: Path, env: dict[str, str]) -> None:
    py = venv / "bin" / "python"
    code = ("import hypernode, sys\n"
            "from hypernode import Feed, Corestore, Hyperdrive, MultiDrive, Node, Swarm, DHTNode\n"
            "from hypernode import DecodeError, FileNotFound, VerificationError\n"
            "from hypernode.messages import hypercore_protocol as hp\n"
            "assert hp.Have.decode(b'\\x08\\x05').length == 1\n"
            # hypercore 11: a store on disk (RocksDB through rocksdict, a dependency the wheel must pull)
            "from hypernode import open_corestore, hyper_url\n"
            "with open_corestore('v11-store', generation=11) as s:\n"
            "    c = s.get('main'); c.append([b'a', b'b']); url = hyper_url(c.key)\n"
            "with open_corestore('v11-store') as s:\n"
            "    assert s.get(key=url).get(1) == b'b'\n"
            "print(hypernode.__file__)\n")
    where = run([py, "-c", code], cwd=work, env=env, what="import hypernode").stdout.strip()
    if not Path(where).is_relative_to(venv) or Path(where).is_relative_to(ROOT):
        raise SmokeError(f"hypernode was imported from {where}, not from the fresh virtualenv")
    out = run([venv / "bin" / "hypernode", "--help"], cwd=work, env=env, what="hypernode --help").stdout
    if "usage: hypernode" not in out:
        raise SmokeError(f"hypernode --help printed no usage: {out[:500]}")


def share_and_clone(venv: Path, work: Path, env: dict[str, str]) -> None:
    cli = venv / "bin" / "hypernode"
    folder = work / "photos"
    (folder / "album").mkdir(parents=True)
    (folder / "readme.txt").write_text("shared from the installed wheel\n")
    (folder / "album" / "cat.bin").write_bytes(os.urandom(300_000))
    (folder / "album" / "empty").write_bytes(b"")
    offline = ["--bootstrap", "none", "--no-local"]
    key = run([cli, "--store", work / "store-a", "create"], cwd=work, env=env, what="hypernode create").stdout
    key = key.strip()
    if not re.fullmatch(r"[0-9a-f]{64}", key):
        raise SmokeError(f"hypernode create printed {key!r}, not a key")
    share = subprocess.Popen([str(cli), "--store", str(work / "store-a"), "share", str(folder), "--key", key,
                              "--port", "0", "--interval", "0.2", *offline],
                             cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    synced = threading.Event()
    listening: list[str] = []

    def read() -> None:
        assert share.stdout is not None
        for line in share.stdout:
            lines.append(line.rstrip())
            m = re.match(r"listening on (\S+):(\d+)", line)
            if m:
                listening.append(m.group(2))
            if line.startswith("synced"):
                synced.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not synced.wait(60) or not listening:
            raise SmokeError(f"hypernode share did not sync and listen: {lines} {share.poll()}")
        clone = work / "clone"
        run([cli, "--store", work / "store-b", "clone", key, clone, "--peer", f"127.0.0.1:{listening[0]}",
             "--timeout", "60", *offline], cwd=work, env=env, what="hypernode clone")
        for path in folder.rglob("*"):
            copy = clone / path.relative_to(folder)
            if path.is_dir() != copy.is_dir() or (path.is_file() and path.read_bytes() != copy.read_bytes()):
                raise SmokeError(f"the clone of {path.relative_to(folder)} differs")
        cloned = {p.relative_to(clone) for p in clone.rglob("*") if p.name != ".hypernode-clone.json"}
        if cloned != {p.relative_to(folder) for p in folder.rglob("*")}:
            raise SmokeError(f"the clone holds other paths: {sorted(map(str, cloned))}")
    finally:
        if share.poll() is None:
            share.send_signal(signal.SIGINT)
        try:
            code = share.wait(20)
        except subprocess.TimeoutExpired:
            share.kill()
            code = share.wait()
        reader.join(5)
        err = share.stderr.read() if share.stderr else ""
    if code != 130:  # interrupted: 128 + SIGINT, after a clean close (no traceback)
        raise SmokeError(f"hypernode share exited {code} on SIGINT: {err[-2000:]}")
    if "Traceback" in err:
        raise SmokeError(f"hypernode share printed a traceback on SIGINT: {err[-2000:]}")
    # the wheel installed without its 'mount' extra: mount says what is missing, in one line
    (work / "mnt").mkdir()
    mount = [str(cli), "--store", str(work / "store-a"), "mount", key, str(work / "mnt"), *offline]
    out = subprocess.run(mount, cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    said = out.stderr.strip().splitlines()
    if out.returncode != 1 or len(said) != 1 or "pyfuse3" not in said[0] or "hypernode[mount]" not in said[0]:
        raise SmokeError(f"hypernode mount without pyfuse3 exited {out.returncode}: {out.stderr[-2000:]}")


def main() -> int:
    started = time.monotonic()
    times: list[tuple[str, float]] = []

    def step(name: str, t0: float) -> float:
        now = time.monotonic()
        times.append((name, now - t0))
        return now

    with tempfile.TemporaryDirectory(prefix="hypernode-wheel-") as tmp_name:
        tmp = Path(tmp_name)
        work = tmp / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env["HOME"] = str(tmp / "home")
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        try:
            t = time.monotonic()
            wheel = build_wheel(tmp, env)
            t = step("build", t)
            check_contents(wheel)
            venv = tmp / "venv"
            run([sys.executable, "-m", "venv", venv], cwd=tmp, env=env, what="python -m venv")
            run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], cwd=tmp, env=env,
                what="pip install the wheel")
            t = step("venv + install", t)
            check_installed(venv, work, env)
            share_and_clone(venv, work, env)
            step("import, --help, create/share/clone, mount without pyfuse3", t)
        except (SmokeError, subprocess.TimeoutExpired) as e:
            print(f"wheel smoke: {e}", file=sys.stderr)
            return 1
    total = time.monotonic() - started
    print(f"wheel smoke: passed in {total:.1f} s (" + ", ".join(f"{n} {s:.1f} s" for n, s in times) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
