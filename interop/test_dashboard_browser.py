"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by playwright with
``executable_path``; no browser is downloaded): ``hypernode gateway`` with a JS hyperdrive peer behind a
slow proxy; the page loads, the form seeds the JS drive, the drive's row shows it, and its "here" part
rises while the download runs, to 100%, with the peer's address and bytes. A screenshot is kept under
the test's tmp dir (its path printed)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import trio

from interop.cliproc import CLI, CLIProcess
from interop.jsproc import JSProcess
from tests.clitools import HYPERNODE
from tests.cliutil import SlowProxy

pytestmark = pytest.mark.interop

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RATE = 1024 * 1024  # bytes a second through the proxy: the 8 MiB download takes ~8 s, over a dozen
# refreshes of the page (every 0.5 s) even when the machine is loaded (the test runs beside others)


def _browser_or_skip() -> None:
    missing = [what for what, there in (("Debian's chromium", os.path.exists(CHROMIUM)),
                                        ("playwright", _has_playwright())) if not there]
    if missing:
        if os.environ.get("CI"):
            raise RuntimeError(f"{' and '.join(missing)} missing: `make test` installs them")
        pytest.skip(f"{' and '.join(missing)} missing (make test installs them)")


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def watch_dashboard(url: str, key: str, profile: Path, shot: Path) -> tuple[list[str], str, str]:
    """Open the dashboard, seed ``key`` with its form, and read the drive's "here" cell until it says
    100%: the values seen, the node line, and the peers cell."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=FLAGS, viewport={"width": 1400, "height": 500})
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#node:has-text('peer(s) connected')", timeout=20_000)
            node_line = page.inner_text("#node")
            page.fill("input[name=key]", f"hyper://{key}/")
            page.click("button[type=submit]")
            page.wait_for_selector(f"#message:has-text('seeding {key[:16]}')", timeout=20_000)
            row = f"tr[data-key='{key}']"
            page.wait_for_selector(row, timeout=20_000)
            seen: list[str] = []
            deadline = time.monotonic() + 60
            middle_shot = False
            while time.monotonic() < deadline:
                value = page.inner_text(f"{row} .local").strip()
                if not seen or seen[-1] != value:
                    seen.append(value)
                if not middle_shot and value not in ("0.0%", "100.0%"):
                    page.screenshot(path=str(shot.with_name("dashboard-downloading.png")), full_page=True)
                    middle_shot = True
                if value == "100.0%" and page.inner_text(f"{row} .seeded").startswith("yes"):
                    break
                time.sleep(0.1)
            page.screenshot(path=str(shot), full_page=True)
            return seen, node_line, page.inner_text(f"{row} .peers")
        finally:
            browser.close()


async def test_the_dashboard_shows_a_js_drive_downloading(js, tmp_path):
    _browser_or_skip()
    async with JSProcess("drive_peer.js", "memory") as peer:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="dashboard"))["key"]
        await peer.command("fixture-done", cmd="fixture", key=key)  # 8 MiB and more
        port = (await peer.command("listening", cmd="listen"))["port"]
        with SlowProxy(port, rate=RATE) as proxy:
            gateway = CLIProcess(tmp_path / "store", "gateway", "--port", "0", "--peer",
                                 f"127.0.0.1:{proxy.port}", "--timeout", "30")
            gateway.args[:len(CLI)] = [HYPERNODE]
            async with gateway:
                url = (await gateway.line("gateway on")).split(" ", 2)[2]
                shot = tmp_path / "dashboard.png"
                seen, node_line, peers = await trio.to_thread.run_sync(
                    watch_dashboard, url, key, tmp_path / "chromium-profile", shot)
                print(f"dashboard screenshots: {shot} and {shot.with_name('dashboard-downloading.png')}")
                assert await gateway.stop() == 130
    assert "1 peer(s) connected" in node_line, node_line
    assert seen[-1] == "100.0%", seen
    between = [v for v in seen if v not in ("0.0%", "100.0%")]
    assert between, f"no progress between 0 and 100% was shown: {seen}"  # live progress
    assert f"127.0.0.1:{proxy.port}" in peers and "↓ 8." in peers, peers
    assert shot.stat().st_size > 10_000
    if os.environ.get("HYPERNODE_KEEP_SCREENSHOT"):  # for a look at it outside the test's tmp dir
        shutil.copy(shot, os.environ["HYPERNODE_KEEP_SCREENSHOT"])
