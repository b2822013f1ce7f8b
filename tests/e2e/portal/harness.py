"""The pieces the portal's browser tests run: the portal as a child process, Debian's headless
Chromium driven by Selenium, and users who are ServiceAccounts with their own tokens.

Chromium and ChromeDriver come from Debian's packages (`chromium`, `chromium-driver`): one source
package, so their versions always match, and nothing is downloaded at test time (Selenium Manager
is never asked: the driver path is given). The flags are the ones this sandbox needs: no sandbox as
root, no GPU, no background networking (the machine's network is closed).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from devcluster.clusters import Cluster
from tests.e2e.operator_process import OperatorProcess, free_port, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1360,900",
)


class PortalProcess(OperatorProcess):
    """`estuary portal` against a test cluster, on a free loopback port, logging to a file (stopped
    and killed like the operator's process)."""

    def __init__(self, kubeconfig: Path, log_path: Path, *args: str) -> None:
        super().__init__(kubeconfig, log_path)
        self.args = args
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "ESTUARY_PORTAL_SECRET": secrets.token_hex(32)}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        command = [sys.executable, "-m", "estuary.cli", "portal", "--kubeconfig", str(self.kubeconfig)]
        command += ["--port", str(self.port), "--insecure-cookies", *self.args]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self._healthy, timeout=60, what=f"the portal on {self.url} (log: {self.log_path})")

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, f"portal exited:\n{self.log()}"
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass(frozen=True)
class User:
    """A person, as a ServiceAccount with a token the API server issued (TokenRequest)."""

    name: str
    namespace: str
    token: str

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


def make_user(cluster: Cluster, namespace: str, name: str) -> User:
    cluster.kubectl("create", "serviceaccount", name, "-n", namespace)
    token = cluster.kubectl("create", "token", name, "-n", namespace, "--duration=2h").stdout.strip()
    return User(name=name, namespace=namespace, token=token)


class Browser:
    """Headless Chromium on one portal; `shoot` saves a full-page PNG for the docs."""

    def __init__(self, base_url: str, screenshot_dir: Path) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.driver.set_page_load_timeout(60)
        self.base_url, self.screenshot_dir = base_url, screenshot_dir

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def sign_in(self, user: User, then: str = "/jobs") -> None:
        self.open(f"/login?next={then}")
        self.driver.find_element(By.ID, "token").send_keys(user.token)
        self.press("#signin")
        wait_for(lambda: self.path() == then, timeout=30, what=f"{user.name} signed in and on {then}")

    def press(self, css: str) -> None:
        """Click a form's button and wait until the page the server answered with has replaced
        this one (a click may return before the navigation it starts, more so on a busy machine)."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, css).click()
        WebDriverWait(self.driver, 30).until(lambda _: replaced(page))

    def path(self) -> str:
        url: str = self.driver.current_url
        return "/" + url.split("/", 3)[3] if url.count("/") >= 3 else url

    def text(self, css: str = "main") -> str:
        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def proxy_headers(self, headers: dict[str, str]) -> None:
        """Send these headers with every request, as an OIDC reverse proxy in front would."""
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})

    def reload_until(self, css: str, wanted: str, timeout: float = 90) -> str:
        """Reload until the element's text contains `wanted` (the operator works meanwhile)."""

        def seen() -> str | None:
            self.driver.refresh()
            found = self.all(css)
            text = found[0].text if found else ""
            return text if wanted in text else None

        return str(wait_for(seen, timeout=timeout, interval=1.0, what=f"{wanted!r} in {css}"))

    def shoot(self, name: str) -> Path:
        """A PNG of the whole page (the window grows to the page's height first)."""
        self.driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur()")
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1360, min(max(int(height), 600), 4000))
        time.sleep(0.2)
        path = self.screenshot_dir / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), f"screenshot {path} failed"
        self.driver.set_window_size(1360, 900)
        return path

    def quit(self) -> None:
        self.driver.quit()
        self._profile.cleanup()


class ForeignSite:
    """Another origin (its own loopback port) serving one page: the attacker in a CSRF test."""

    def __init__(self, html: str) -> None:
        import http.server
        import threading

        body = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def replaced(element: WebElement) -> bool:
    """Whether the page that held `element` is gone. ChromeDriver answers a question about an element
    of a page being replaced either with "stale element" or, mid-swap, with "Node with given id does
    not belong to the document"; both mean the old page is gone."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as err:
        if "does not belong to the document" in str(err.msg):
            return True
        raise
    return False
