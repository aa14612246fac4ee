"""A real Prometheus server for tests: its own storage folder, a free port, the shipped
rules, and one scrape target; asked through its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, free_port, wait_until

RULES = ROOT / "etc" / "prometheus" / "orderd-rules.yml"
JOB = "orderd"
"""The job name the shipped rules expect (docs/operations.md)."""


def prometheus_binary() -> str:
    """The `prometheus` executable, or the test is skipped saying why."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus server is not installed (Debian package prometheus; "
                    "CI installs it)")
    try:
        subprocess.run([binary, "--version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"the prometheus server cannot run here: {exc}")
    return binary


class PrometheusServer:
    """Scrapes `target` (HOST:PORT) every second and evaluates the rules every second."""

    def __init__(self, folder: Path, target: str) -> None:
        self.folder = folder
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "prometheus.log"
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            f"rule_files:\n  - {json.dumps(str(RULES))}\n"
            f"scrape_configs:\n  - job_name: {JOB}\n"
            f"    static_configs:\n      - targets: [{json.dumps(target)}]\n")
        self.command = [prometheus_binary(), f"--config.file={config}",
                        f"--storage.tsdb.path={folder / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=log,
                                            cwd=self.folder)
        wait_until(self._ready, "prometheus to be ready", attempts=3000)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return answer.status == 200  # type: ignore[no-any-return]
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """The `data` of a successful API answer."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}",
                                        timeout=10) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as exc:  # a bad query: say which and why
            raise AssertionError(f"{path} {params}: {exc.read().decode()}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The series of an instant query now."""
        return self.api("query", query=promql)["result"]  # type: ignore[no-any-return]

    def rules(self) -> dict[str, dict[str, Any]]:
        """Every alerting rule by name, with its state and its alerts."""
        groups = self.api("rules", type="alert")["groups"]
        return {rule["name"]: rule for group in groups for rule in group["rules"]}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
