"""The alerts of a restart storm are raised as the process is about to exit; a sink
that takes a little over a second per alert lost those still queued: MetricsActor's
stop waited at most 1 s per sink, and the sink threads die with the process. Now every
sink drains at once, within one bound for all."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from actors.metrics.alert_sinks import QUEUE_SIZE, SinkWorker, close_sinks
from actors.metrics.series import Metrics
from tests.helpers import ROOT

ANSWER_S = 1.2
"""How long the webhook takes to answer (a slow-ish paging service)."""

CHILD = """
import sys
from pathlib import Path
from actors.metrics.alert_sinks import AlertSettings
from daemon.config import Config
from daemon.system import ActorSystem
config = Config(state_dir=Path(sys.argv[1]),
                alerts=AlertSettings(webhook_url=sys.argv[2], repeat_interval_s=60.0))
system = ActorSystem(config)  # escalation halts, as the daemon's own does, then it exits
system.start()
system.escalate("6 actor restarts within 30 s")
system.stop()
"""


def test_the_alerts_of_a_restart_storm_reach_a_slow_webhook(tmp_path: Path) -> None:
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body["name"])
            time.sleep(ANSWER_S)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "state"), url],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        time.sleep(3 * ANSWER_S)
        assert sorted(received) == ["daemon_halted", "restart_storm"], done.stderr[-2000:]
    finally:
        server.shutdown()
        server.server_close()


def slow_sink(name: str, took_s: float, delivered: list[str]) -> SinkWorker:
    def deliver(body: bytes) -> None:
        time.sleep(took_s)
        delivered.append(name)

    return SinkWorker(name, deliver, Metrics())


def test_sinks_are_drained_together_within_one_bound() -> None:
    delivered: list[str] = []
    sinks = [slow_sink(name, 1.5, delivered) for name in ("file", "exec", "webhook")]
    for sink in sinks:
        sink.put(b"{}")
    started = time.monotonic()
    close_sinks(sinks, within_s=5.0)
    assert sorted(delivered) == ["exec", "file", "webhook"]
    assert time.monotonic() - started < 3.0, "one wait for all, not one per sink"


def test_a_hanging_sink_with_a_full_queue_is_left_at_the_bound() -> None:
    sink = slow_sink("webhook", 30.0, [])
    for _ in range(QUEUE_SIZE + 5):
        sink.put(b"{}")
    started = time.monotonic()
    close_sinks([sink], within_s=0.5)
    assert 0.4 < time.monotonic() - started < 2.0
