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
from collections.abc import Callable
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
        # each is received before it is answered, and the process waited for the answers
        assert sorted(received) == ["daemon_halted", "restart_storm"], done.stderr[-2000:]
    finally:
        server.shutdown()
        server.server_close()


def test_sinks_are_drained_together_within_one_bound() -> None:
    """Each sink's delivery waits for the other two's to start: only sinks drained
    together deliver (one after the other, the first would wait in vain)."""
    delivered: list[str] = []
    together = threading.Barrier(3, timeout=10.0)

    def deliver_of(name: str) -> Callable[[bytes], None]:
        def deliver(body: bytes) -> None:
            together.wait()
            delivered.append(name)
        return deliver

    sinks = [SinkWorker(name, deliver_of(name), Metrics())
             for name in ("file", "exec", "webhook")]
    for sink in sinks:
        sink.put(b"{}")
    close_sinks(sinks, within_s=30.0)
    assert sorted(delivered) == ["exec", "file", "webhook"]


def test_a_hanging_sink_with_a_full_queue_is_left_at_the_bound() -> None:
    """A sink that never finishes, its queue full: the close still returns (at its
    bound), and the process can exit."""
    release = threading.Event()

    def hang(body: bytes) -> None:
        release.wait(60.0)

    sink = SinkWorker("webhook", hang, Metrics())
    for _ in range(QUEUE_SIZE + 5):
        sink.put(b"{}")
    closing = threading.Thread(target=close_sinks, args=([sink],), kwargs={"within_s": 0.5})
    try:
        closing.start()
        closing.join(timeout=30.0)
        assert not closing.is_alive(), "close waited for the hanging sink"
    finally:
        release.set()
