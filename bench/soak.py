"""Chaos soak: orders streamed through a real daemon and venue while both are hit.

    python -m bench.soak --minutes N [--seed S]

Clients submit, cancel and ask the status of orders with client order ids, through
orderd's binance driver on an `orderd paper-venue` process, while the chaos crashes
actors, scripts venue faults, fills the disk (a tmpfs of its own: root only), kills
the daemon and the venue with SIGKILL and restarts them, and sends SIGHUP. Then the
faults stop, the orders settle, and the ledger is compared with the venue's book.
Prints a table and one `SOAK {json}` line; exits 1 when an invariant is broken.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.soak_chaos import Chaos, Timing
from bench.soak_check import Verdict, judge, ledger_orders, settle
from bench.soak_load import Tally, start_clients
from bench.soak_procs import Daemon, SmallDisk, Venue
from protocol.client import OrderdClient
from tests.helpers import KEY, SECRET, free_ports

ACCEPT_TIMEOUT_S = 5.0
RECV_WINDOW_MS = 1000
TIMEOUT_MS = 800
"""Below the recvWindow: a create the client gave up on may still land, late."""
PERIOD_S = 30.0
COOL_DOWN_S = 5.0
"""A venue killed for a second or two is an outage the circuit sees; with the default
30 s cool-down (as long as the send deadline) the soak would measure mostly that."""
INVARIANTS = ("lost", "duplicated", "overfilled", "unresolved", "unanswered", "ghosts",
              "refused_submits", "stuck_starts", "client_crashes", "bad_final_stop")


@dataclass(frozen=True)
class Settings:
    minutes: float = 5.0
    seed: int = 1
    clients: int = 4
    pace_s: float = 0.05
    """Mean pause between one client's operations."""
    reply_margin_s: float = 2.0
    """A request is unanswered without a reply by accept_timeout_s plus this."""
    settle_s: float = 120.0
    disk_mb: int = 512
    workdir: Path | None = None
    """Kept when given; otherwise a temporary folder, removed when all went well."""


def daemon_config(state: Path, control: str, events: str, venue_port: int) -> str:
    """Defaults but for what the soak needs: a short recvWindow (short resolution
    windows), a short circuit cool-down, the crash command, a pace the local venue
    takes."""
    return f"""state_dir = "{state}"
[control]
endpoint = "{control}"
[events]
endpoint = "{events}"
[orders]
accept_timeout_s = {ACCEPT_TIMEOUT_S}
[circuit_breaker]
cool_down_seconds = {COOL_DOWN_S}
[supervisor]
fault_commands = true
period_s = {PERIOD_S}
[[exchanges]]
name = "bx"
driver = "binance"
api_url = "http://127.0.0.1:{venue_port}"
api_key = "{KEY}"
secret = "{SECRET}"
timeout_ms = {TIMEOUT_MS}
recv_window_ms = {RECV_WINDOW_MS}
rate_limit_per_s = 500.0
"""


def percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1 or q == 100:
        return round(max(values), 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def run(settings: Settings) -> dict[str, Any]:
    """One soak; its figures (the SOAK line's object)."""
    workdir = settings.workdir or Path(tempfile.mkdtemp(prefix="orderd-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    control_port, events_port, venue_port = free_ports(3)
    disk = SmallDisk(workdir / "orderd" / "state", settings.disk_mb)
    disk_skipped = disk.mount()
    config = workdir / "orderd" / "orderd.toml"
    control = f"tcp://127.0.0.1:{control_port}"
    config.write_text(daemon_config(disk.path, control, f"tcp://127.0.0.1:{events_port}",
                                    venue_port))
    venue = Venue(workdir / "venue", venue_port, workdir / "venue.log", settings.seed)
    daemon = Daemon(workdir / "orderd", config, control)
    try:
        venue.start()
        daemon.start()
        figures = soak(settings, daemon, venue, None if disk_skipped else disk)
    finally:
        stop_status = daemon.stop()
        venue.stop()
        keep_ledger(disk.path, workdir / "ledger-final.sqlite")
        disk.unmount()
    figures["final_stop_status"] = stop_status
    figures["bad_final_stop"] = int(stop_status != 0)
    figures["disk_full"] = disk_skipped or "on"
    figures["workdir"] = str(workdir)
    if settings.workdir is None and not broken(figures):
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


LOG_MARKS = {"circuit_openings": "circuit of bx is now open",
             "overfills_not_counted": "beyond its amount",
             "proven_absent": "proven absent on",
             "ledger_unwritable": "ledger_guard: the ledger cannot be written"}
"""Log lines, not alerts: repeats of an alert within its interval are held back."""


def log_counts(log: Path) -> dict[str, int]:
    """How often the daemon's log says what the faults should make it say."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return {name: text.count(mark) for name, mark in LOG_MARKS.items()}


def keep_ledger(state: Path, to: Path) -> None:
    """A copy of the ledger as the daemon left it (the small disk goes with the run)."""
    with suppress(OSError, sqlite3.Error):
        source = sqlite3.connect(state / "ledger.sqlite")
        target = sqlite3.connect(to)
        source.backup(target)
        source.close()
        target.close()


def soak(settings: Settings, daemon: Daemon, venue: Venue,
         disk: SmallDisk | None) -> dict[str, Any]:
    """Load and faults for the run's minutes, then calm, settling and the verdict."""
    tally, stop = Tally(), threading.Event()
    reply_within = ACCEPT_TIMEOUT_S + settings.reply_margin_s
    clients = start_clients(settings.clients, daemon.control, tally, stop, settings.seed,
                            settings.pace_s, reply_within)
    timing = Timing(RECV_WINDOW_MS / 1000, TIMEOUT_MS / 1000, PERIOD_S)
    chaos = Chaos(daemon, venue, disk, timing, random.Random(settings.seed))
    began = time.monotonic()
    try:
        chaos.run(began + settings.minutes * 60)
        calm(chaos)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
    ran_s = time.monotonic() - began
    with OrderdClient(daemon.control, timeout_s=30) as client:
        settled_s = settle(client, settings.settle_s)
        ledger = ledger_orders(client)
    verdict = judge(tally.acked, ledger, venue.orders())
    return {"seed": settings.seed, "minutes": settings.minutes, "ran_s": round(ran_s, 1),
            "settled_s": None if settled_s is None else round(settled_s, 1),
            **outcomes(tally, verdict, daemon), **availability(tally, chaos, daemon),
            "faults": dict(chaos.done), "log": log_counts(daemon.log)}


def outcomes(tally: Tally, verdict: Verdict, daemon: Daemon) -> dict[str, Any]:
    """The invariants' counts, with a few examples of each that broke."""
    cut = [s for s in tally.silent if daemon.was_down(s.sent, s.deadline)]
    return {
        "requests": tally.requests, "submitted": len(tally.submitted),
        "acked": len(tally.acked),
        "lost": len(verdict.lost), "duplicated": len(verdict.duplicated),
        "overfilled": len(verdict.overfilled), "unresolved": len(verdict.unresolved),
        "unanswered": len(tally.silent) - len(cut), "cut_by_kill": len(cut),
        "ghosts": len(verdict.ghosts), "refused_submits": len(tally.refused),
        "client_crashes": len(tally.crashed),
        "stuck_starts": sum(s.ready_s is None for s in daemon.starts),
        "statuses": dict(verdict.statuses), "disagree": len(verdict.disagree),
        "expired_unsent": verdict.expired_unsent,
        "examples": {name: values[:5] for name, values in (
            ("lost", verdict.lost), ("duplicated", verdict.duplicated),
            ("overfilled", verdict.overfilled), ("unresolved", verdict.unresolved),
            ("ghosts", verdict.ghosts), ("disagree", verdict.disagree),
            ("refused_submits", [f"{c} {code}" for c, code in tally.refused]),
            ("client_crashes", tally.crashed)) if values},
    }


def availability(tally: Tally, chaos: Chaos, daemon: Daemon) -> dict[str, Any]:
    """What the faults cost: restarts to ready, answers that said wait, orders expired."""
    restarts = daemon.starts[1:]  # the first start had nothing to recover
    ready = [s.ready_s for s in restarts if s.ready_s is not None]
    recovering = [s.ready_s for s in restarts if s.ready_s is not None and s.recovering]
    idle = [s.ready_s for s in restarts if s.ready_s is not None and not s.recovering]
    return {
        "restarts": len(restarts), "ready_p50_s": percentile(ready, 50),
        "ready_p99_s": percentile(ready, 99), "ready_max_s": percentile(ready, 100),
        "ready_recovering_p50_s": percentile(recovering, 50),
        "restarts_recovering": len(recovering), "ready_idle_p50_s": percentile(idle, 50),
        "recovered_orders": sum(s.recovering for s in restarts),
        "disk_recovery_p50_s": percentile(chaos.disk_recovery_s, 50),
        "disk_full_halts": len(chaos.disk_recovery_s),
        "halted_answers": tally.answers["halted"],
        "starting_answers": tally.answers["starting"],
        "starting_pings": daemon.starting_answers,
        "answers": dict(tally.answers), "late_replies": tally.late,
        "slowest_reply_s": round(tally.slowest_s, 2),
        "daemon_exits": daemon.exits, "venue_exits": chaos.venue_exits,
    }


def calm(chaos: Chaos) -> None:
    """The faults stop: the disk freed, the venue restarted without faults, the daemon
    running and ready; the load goes on meanwhile."""
    if chaos.disk is not None:
        chaos.disk.free()
    chaos.venue.stop()
    chaos.venue.start()
    chaos.watch()
    if chaos.daemon.process is None:
        chaos.daemon.start()
    else:
        chaos.daemon.wait_ready(time.monotonic())


def broken(figures: dict[str, Any]) -> list[str]:
    """The invariants that do not hold."""
    return [name for name in INVARIANTS if figures[name]]


def table(figures: dict[str, Any]) -> str:
    rows = [
        ("ran", f"{figures['ran_s']} s, seed {figures['seed']}"),
        ("requests / submitted / acked",
         f"{figures['requests']} / {figures['submitted']} / {figures['acked']}"),
        *((name, figures[name]) for name in INVARIANTS),
        ("cut by kill", figures["cut_by_kill"]),
        ("expired unsent (acked)", figures["expired_unsent"]),
        ("daemon restarts (recovering orders)",
         f"{figures['restarts']} ({figures['restarts_recovering']}, "
         f"{figures['recovered_orders']} orders)"),
        ("restart to ready p50 / p99 / max",
         f"{figures['ready_p50_s']} / {figures['ready_p99_s']} / {figures['ready_max_s']} s"),
        ("  p50 recovering orders / nothing to recover",
         f"{figures['ready_recovering_p50_s']} / {figures['ready_idle_p50_s']} s"),
        ("disk full: halts, freed to ready p50",
         f"{figures['disk_full_halts']}, {figures['disk_recovery_p50_s']} s"),
        ("halted / starting answers",
         f"{figures['halted_answers']} / {figures['starting_answers']}"),
        ("slowest reply", f"{figures['slowest_reply_s']} s"),
        ("settled after the faults", f"{figures['settled_s']} s"),
        ("exits by themselves: daemon / venue",
         f"{figures['daemon_exits']} / {figures['venue_exits']}"),
        ("disk full", figures["disk_full"]),
        ("faults", ", ".join(f"{k} {v}" for k, v in sorted(figures["faults"].items()))),
        ("the daemon's log", ", ".join(f"{k} {v}" for k, v in sorted(figures["log"].items()))),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the faults go on")
    parser.add_argument("--seed", type=int, default=1, help="seed of the load and the faults")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a "
                        "temporary folder, removed unless an invariant broke)")
    args = parser.parse_args(argv)
    figures = run(Settings(minutes=args.minutes, seed=args.seed, clients=args.clients,
                           workdir=args.workdir))
    print(table(figures))
    print("SOAK " + json.dumps(figures, sort_keys=True), flush=True)
    failed = broken(figures)
    if failed:
        print(f"broken: {', '.join(failed)} (see {figures['workdir']})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
