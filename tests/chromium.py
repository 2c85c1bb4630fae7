"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: no port, so it works inside a network namespace of its own).

`Browser(network=False)` starts it under `unshare --net` (root): the browser has only a
loopback that is down, so nothing it tries can leave; every URL the page requests is
recorded from `Network.requestWillBeSent` either way.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netconform.waits import wait_until

BINARY = "chromium"
"""Debian's wrapper script; the browser itself is beside it (see `binary()`)."""
START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0


class BrowserError(Exception):
    pass


def browser_binary() -> str:
    """Debian's /usr/bin/chromium is a shell wrapper (it prints `[: ... unexpected operator`
    on every start); the browser it runs is /usr/lib/chromium/chromium."""
    direct = Path("/usr/lib/chromium/chromium")
    if direct.exists():
        return str(direct)
    found = shutil.which(BINARY)
    if found is None:
        raise BrowserError("chromium not found: ./run setup installs Debian's chromium")
    return found


class Browser:
    """One headless Chromium with one page."""

    def __init__(self, network: bool = False, width: int = 1400, height: int = 1000) -> None:
        binary = browser_binary()
        self.profile = Path(tempfile.mkdtemp(prefix="netconform-chromium-"))
        self._log = (self.profile / "stderr.log").open("wb")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        argv = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps",
            "--disable-extensions", "--hide-scrollbars", "about:blank",
        ]  # fmt: skip
        if not network:
            argv = ["unshare", "--net", "--", *argv]

        def fds() -> None:  # the protocol's fds 3 (commands in) and 4 (messages out)
            high_in, high_out = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
            pass_fds=(3, 4), preexec_fn=fds,  # preexec runs before the fds are closed
        )  # fmt: skip
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []
        self.requests: list[str] = []
        target = self.call("Target.createTarget", {"url": "about:blank"}, timeout=START_TIMEOUT)
        attached = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable", session=True)

    # -- the protocol -----------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("chromium did not answer in time")
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode}")
            import select

            ready, _, _ = select.select([self._from_browser], [], [], 0.5)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"chromium closed its protocol pipe: {self.log_tail()}")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: bool = False,
        timeout: float = COMMAND_TIMEOUT,
    ) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self._event(reply)

    def _event(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        if message.get("method") == "Network.requestWillBeSent":
            self.requests.append(str(message["params"]["request"]["url"]))

    def log_tail(self) -> str:
        self._log.flush()
        lines = (self.profile / "stderr.log").read_text(errors="replace").splitlines()
        return " | ".join(lines[-3:])

    # -- what a test does with a page -------------------------------------------------------

    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url}, session=True)

    def evaluate(self, expression: str) -> Any:
        reply = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
        )
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression[:80]}: {reply['exceptionDetails'].get('text')}")
        return reply.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, name: str) -> Any:
        """Poll a JavaScript expression until it is truthy (a named wait, never a sleep)."""
        last: list[Any] = [None]

        def truthy() -> Any:
            last[0] = self.evaluate(expression)
            return last[0]

        return wait_until(truthy, timeout=timeout, name=name, interval=0.2,
                          describe=lambda: f"{expression[:100]} -> {last[0]!r}")  # fmt: skip

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''"))

    def screenshot(self, path: Path) -> Path:
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def click_text(self, text: str) -> bool:
        """Click the innermost visible element whose text starts with `text` (or the button,
        link or tab around it)."""
        return bool(self.evaluate(_CLICK % json.dumps(text)))

    def close(self) -> None:
        with contextlib.suppress(BrowserError):
            self.call("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_CLICK = """(() => {
  const want = %s;
  const has = e => e.offsetParent !== null && e.textContent.trim().startsWith(want);
  const all = [...document.querySelectorAll('body *')].filter(has);
  const inner = all.filter(e => ![...e.children].some(has));
  const target = inner[0];
  if (!target) return false;
  (target.closest('button, a, [role=tab], [role=button]') || target).click();
  return true;
})()"""

Predicate = Callable[[str], bool]
