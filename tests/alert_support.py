"""Alert sinks for tests: a local webhook server, an executable and the files they fill."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum"),
            "unknown": ("",)}


class Webhook:
    """An HTTP server on a free port keeping every JSON body POSTed to it."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                failing = outer.requests <= outer.fail_first
                if not failing:
                    outer.bodies.append(json.loads(body))
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def exec_sink(folder: Path) -> tuple[Path, Path]:
    """(an executable appending its stdin as one line to a file, that file)."""
    out = folder / "exec-alerts.jsonl"
    script = folder / "alert-sink.py"
    script.write_text(f"#!{sys.executable}\nimport sys\n"
                      f"with open({str(out)!r}, 'a') as f:\n"
                      "    f.write(sys.stdin.read().strip() + '\\n')\n")
    os.chmod(script, 0o755)
    return script, out


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def names_of(exposition: str) -> set[str]:
    """Every sample name a scrape can hold, from its families' types (samples or not)."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def scrape(url: str, openmetrics: bool = False) -> bytes:
    accept = "application/openmetrics-text; version=1.0.0" if openmetrics else "text/plain"
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read()  # type: ignore[no-any-return]


def check_exposition(url: str, promtool: str | None = None) -> str:
    """Validate the endpoint's exposition: `promtool check metrics` when installed (no
    findings allowed), else the strict OpenMetrics parser on an OpenMetrics scrape.

    Returns which validator ran, so the test can say so."""
    promtool = promtool or shutil.which("promtool")
    if promtool is None:
        exposition = scrape(url, openmetrics=True).decode()
        families = list(openmetrics_families(exposition))  # type: ignore[no-untyped-call]
        assert families and all(f.documentation for f in families)
        print("promtool not installed: checked with the OpenMetrics parser instead")
        return "openmetrics-parser"
    done = subprocess.run([promtool, "check", "metrics"], input=scrape(url),
                          capture_output=True, timeout=30, check=False)
    findings = (done.stdout + done.stderr).decode()
    assert done.returncode == 0 and not findings.strip(), findings
    return "promtool"
