"""A real browser through nbterm's tunnel: closing tabs and quitting the browser never cuts the
other connections.

Headless Chromium (Debian's package, driven by Selenium) loads JupyterLab through the tunnel and
runs a cell in a real kernel; meanwhile a second client downloads 100 MB through the same
tunnel. Then a tab closes and the browser quits (the half-closed and reset sockets of a real
browser, which plain test clients did not reproduce). Invariants: the download arrives whole,
and the SSH connection is never lost (no 'lost' event, no reconnect).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.remote import jupyter
from nbterm.services.remote.connection import Backoff
from nbterm.services.remote.events import ConnectionChanged, RemoteEvent
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.session import Session
from nbterm.services.remote.ssh import close_quietly, connect, run, target_for
from tests.harness.remote import remote_config_text, trust_all
from tests.harness.sshd import SshServer

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

pytestmark = [pytest.mark.sshd, pytest.mark.browser]

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
BIG = 100 * 1024 * 1024
NOTEBOOK = (
    '{"cells": [{"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [],'
    ' "source": ["print(6 * 7, \\"through the tunnel\\")"]}], "metadata": {"kernelspec":'
    ' {"name": "python3", "display_name": "Python 3", "language": "python"}},'
    ' "nbformat": 4, "nbformat_minor": 5}'
)


def _browser() -> WebDriver:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='nbterm-chromium-')}"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(DRIVER)), options=options)


@pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="Chromium and chromedriver are not installed (tests/setup.sh"
    " installs Debian's chromium and chromium-driver as root)",
)
@pytest.mark.timeout(300)
async def test_closing_tabs_and_the_browser_never_cuts_other_connections(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    config: LoadedConfig = load_config(write_config(remote_config_text(sshd)))
    host = config.hosts["box"]
    known = KnownHosts(paths.known_hosts)
    link = await connect(target_for(host, config), known, trust_all)
    await jupyter.stop(link, host.jupyter)  # a server of its own, with JupyterLab loaded
    notebooks = "nbterm-test-notebooks"
    await run(link, f"mkdir -p {notebooks} && cat > {notebooks}/browser-test.ipynb", input=NOTEBOOK)
    await run(link, f"head -c {BIG} /dev/urandom > {notebooks}/big.bin", timeout=60)
    events: list[RemoteEvent] = []
    session = Session(host, target_for(host, config), paths, verifier=trust_all,
                      on_event=events.append, probe_interval=1.0,
                      backoff=Backoff(base=0.2, cap=1.0))  # fmt: skip
    result = await session.up()
    base = f"http://127.0.0.1:{result.local_port}/"
    token = result.server.token
    received: list[int] = []
    errors: list[str] = []

    def download() -> None:  # a second client, slowed down to outlast the browser's actions
        request = urllib.request.Request(f"{base}files/big.bin",
                                         headers={"Authorization": f"token {token}"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                while chunk := response.read(256 * 1024):
                    received.append(len(chunk))
                    time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
            errors.append(repr(exc))

    def drive() -> None:  # in a thread: the tunnel runs on this test's event loop
        browser = _browser()
        try:
            # JupyterLab redraws parts of the page while it settles: a stale element is looked
            # up again rather than failing the wait
            wait = WebDriverWait(browser, 90, ignored_exceptions=[StaleElementReferenceException])
            browser.get(f"{base}lab/tree/browser-test.ipynb?token={token}")
            wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".jp-Cell .cm-content")))
            wait.until(lambda d: "Idle" in d.page_source)
            downloader.start()

            def run_the_cell(driver: WebDriver) -> bool:
                """Click into the cell and run it; JupyterLab redraws its editor while it
                settles, so a stale element is simply found again."""
                try:
                    editor = driver.find_element(By.CSS_SELECTOR, ".jp-Cell .cm-content")
                    editor.click()
                    chain = ActionChains(driver)
                    chain.key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
                    return True
                except StaleElementReferenceException:
                    return False

            output = ec.text_to_be_present_in_element(
                (By.CSS_SELECTOR, ".jp-OutputArea-output"), "42 through the tunnel")  # fmt: skip
            # on a cold machine (the suite's first test) the kernel may still be starting when
            # the keys arrive and JupyterLab drops them: the cell is run again until it answers
            for _attempt in range(4):
                wait.until(run_the_cell)
                try:
                    WebDriverWait(browser, 25, ignored_exceptions=[StaleElementReferenceException]
                                  ).until(output)  # fmt: skip
                    break
                except TimeoutException:
                    continue
            wait.until(output)
            browser.switch_to.new_window("tab")
            browser.get(f"{base}lab?token={token}")
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#jp-main-dock-panel")))
            browser.close()  # one tab closes ...
            browser.switch_to.window(browser.window_handles[0])
            time.sleep(1.0)
        finally:
            browser.quit()  # ... then the whole browser

    downloader = threading.Thread(target=download)
    try:
        await asyncio.to_thread(drive)
        await asyncio.to_thread(downloader.join, 120)
        await asyncio.sleep(2)  # time for a lost connection to be noticed and said
    finally:
        await session.down()
        await run(link, f"rm -f {notebooks}/big.bin {notebooks}/browser-test.ipynb; true")
        await jupyter.stop(link, host.jupyter)
        close_quietly(link)
    lost = [e for e in events if isinstance(e, ConnectionChanged) and e.state == "lost"]
    assert not lost, f"the SSH connection was lost: {lost}"
    assert session.connection.reconnects == 0
    assert errors == []
    assert sum(received) == BIG
