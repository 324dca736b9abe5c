"""How long a page takes to show its first plot in headless Chromium (Debian's
`chromium`), driven over the DevTools protocol: from the navigation's start until an
element matching a CSS selector is in the page, polled every 50 ms (a poll waits while
the page's script keeps Chromium busy)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-allow-origins=*",
    "--window-size=1280,900",
]
# A plotly plot with its points drawn (an empty plot's frame shows long before).
FIRST_PLOT = ".js-plotly-plot .scatterlayer .trace .points path"
BLANK = "about:blank"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def seconds_until(url: str, selector: str = FIRST_PLOT, deadline: float = 300.0) -> float | None:
    """Seconds from navigating to `url` until `selector` matches, or None without a
    Chromium; raises TimeoutError after `deadline` seconds."""
    import websocket  # the bench extra's websocket-client

    program = chromium()
    if program is None:
        return None
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        port = free_port()
        process = subprocess.Popen(
            [
                program,
                *FLAGS,
                f"--remote-debugging-port={port}",
                f"--user-data-dir={profile}",
                BLANK,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its renderers and helpers are stopped with it
        )
        try:
            page = wait(lambda: _page(port), 30, "Chromium's DevTools endpoint")
            connection = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=deadline)
            ids = itertools.count(1)

            def call(method: str, **params: Any) -> dict:
                number = next(ids)
                connection.send(json.dumps({"id": number, "method": method, "params": params}))
                while True:
                    message = json.loads(connection.recv())
                    if message.get("id") == number:
                        return message.get("result", {})

            found = f"document.querySelector({json.dumps(selector)}) !== null"
            start = time.perf_counter()
            call("Page.navigate", url=url)
            while time.perf_counter() - start < deadline:
                if call("Runtime.evaluate", expression=found)["result"].get("value"):
                    return time.perf_counter() - start
                time.sleep(0.05)
            raise TimeoutError(f"{url}: no {selector!r} after {deadline:.0f} s")
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _page(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
            targets = json.loads(response.read())
    except OSError:
        return None
    return next((t for t in targets if t.get("type") == "page"), None)


def wait(probe: Any, seconds: float, what: str) -> Any:
    """`probe()`'s first true answer, polled every 100 ms for `seconds` at most."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"no {what} after {seconds:.0f} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
