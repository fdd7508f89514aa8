"""A customer reports a problem in a real browser against the local stack (`make run`),
gets a case number and an e-mail, and the case is still there after a restart."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalStack:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[str] | None = None
        self.chalice_pid: int | None = None
        self.output: list[str] = []

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.stack", "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--tick", "1"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 120
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if match := re.search(r"chalice local pid (\d+)", line):
                self.chalice_pid = int(match.group(1))
            if "service desk ready" in line:
                return
        raise AssertionError("local stack did not start:\n" + "".join(self.output))

    def stop(self) -> int:
        assert self.process is not None and self.process.stdout is not None
        self.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        remaining, _ = self.process.communicate(timeout=60)
        self.output.append(remaining)
        return self.process.returncode


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    local = LocalStack(tmp_path / "data", _free_port())
    local.start()
    yield local
    if local.process and local.process.poll() is None:
        local.stop()


def test_customer_reports_a_problem_in_the_browser_and_it_survives_a_restart(
    stack: LocalStack,
) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: make test installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN").new_page()
            page.goto(stack.base_url + "/")
            assert page.locator("h1").inner_text() == "问题反馈"
            page.click("#switch-language")
            assert page.locator("h1").inner_text() == "Report a problem"

            page.select_option("#kind", "wrong_item")
            page.fill("#name", "Zoë 王")
            page.fill("#email", "zoe@example.com")
            page.fill("#order_ref", "SO-77")
            page.fill("#description", 'Got blue, ordered red 😀 =HYPERLINK("http://x","y")')
            page.click("#submit")
            page.wait_for_url(re.compile(r".*/status/.*submitted=1.*"))
            case_number = page.locator("#case-number").inner_text()
            status_url = page.locator("#status-link").inner_text()
            assert re.fullmatch(r"AS\d{6}", case_number)
            assert status_url.startswith(stack.base_url + "/status/")
            assert page.locator("#case-description").inner_text() == (
                'Got blue, ordered red 😀 =HYPERLINK("http://x","y")'
            )
        finally:
            browser.close()

    # The confirmation e-mail, in English as the customer switched, lands as an .eml file.
    mail_dir = stack.data_dir / "mail"
    deadline = time.monotonic() + 30
    mails: list[Path] = []
    while time.monotonic() < deadline and not mails:
        # (The service centre's daily summary and monthly report land there too.)
        mails = [m for m in mail_dir.glob("*.eml") if case_number in m.read_text()]
        time.sleep(0.5)
    assert len(mails) == 1, "no confirmation e-mail was written"
    mail = mails[0].read_text()
    assert case_number in mail
    assert "We received your report" in mail

    # Ctrl-C stops everything it started...
    chalice_pid = stack.chalice_pid
    assert chalice_pid is not None
    assert stack.stop() == 0
    assert not _alive(chalice_pid), "chalice local outlived the stack"

    # ...and the case is there after starting again.
    stack.start()
    response = requests.get(status_url, timeout=10)
    assert response.status_code == 200
    assert case_number in response.text
    token = status_url.rsplit("/", 1)[1]
    assert requests.get(f"{stack.base_url}/api/status/{token}x", timeout=10).status_code == 404
