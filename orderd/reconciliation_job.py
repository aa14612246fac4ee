"""ReconciliationJob: reconciliation as a service or a one-off, without the daemon.

    python -m orderd.reconciliation_job [--config PATH] [--run-once]

It starts its own actors on the configured ledger and exchanges (OrderActor,
one ExchangeActor per exchange, ReconcilerActor). It takes the state_dir like the
daemon: while a daemon (or executor) owns it, it exits with status 2 (the library
raises StateDirInUse); against a running daemon use `orderctl reconcile`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from actors.reconcile.actor import NAME as RECONCILER
from actors.reconcile.actor import RUN_TIMEOUT_S, ScheduledRuns
from actors.reconcile.messages import RunReconciliation
from actors.runtime import Clock
from daemon.config import Config, load_config
from daemon.config_loader import ConfigError, build
from daemon.startup import EXIT_CONFIG, EXIT_START, StartupError
from daemon.state_lock import StateDirInUse
from daemon.system import ActorSystem
from orderd.config import executor_table

log = logging.getLogger(__name__)


def job_config(config: dict[str, Any], base_dir: Path) -> Config:
    """The daemon's Config from the original module's shape:
    `{"executor": {daemon keys}, "schedule": {...}, "reporting": {...}, "run_on_start": bool}`;
    `executor` is the executors' dict (see `orderd.config`)."""
    table = executor_table(config.get("executor") or {})
    for section in ("schedule", "reporting"):
        if section in config:
            table[section] = config[section]
    if "run_on_start" in config:
        table["reconciliation"] = {**table.get("reconciliation", {}),
                                   "run_on_start": config["run_on_start"]}
    return build(Config, table, "", base_dir)


class ReconciliationJob:
    """Scheduled or one-off reconciliation. Runs never overlap: they queue in one actor."""

    def __init__(self, config: dict[str, Any] | Config, base_dir: Path | None = None,
                 clock: Clock | None = None) -> None:
        self.config = (config if isinstance(config, Config)
                       else job_config(config, base_dir or Path.cwd()))
        self.clock = clock or Clock()
        self.system: ActorSystem | None = None
        self._started = threading.Lock()
        self._stop = threading.Event()

    def _actors(self) -> ActorSystem:
        """Start the actors once (the same system the daemon runs, without sockets)."""
        with self._started:
            if self.system is None:
                system = ActorSystem(self.config, clock=self.clock)
                system.start()
                system.state.running()
                self.system = system
            return self.system

    def run_once(self, exchange: str | None = None) -> dict[str, Any]:
        """One reconciliation (blocking); returns its report."""
        report: dict[str, Any] = self._actors().registry.ask(
            RECONCILER, RunReconciliation(exchange), timeout=RUN_TIMEOUT_S)
        return report

    async def run_reconciliation(self, exchange: str | None = None) -> dict[str, Any]:
        """One reconciliation without blocking the event loop; returns its report."""
        return await asyncio.to_thread(self.run_once, exchange)

    def start(self) -> None:
        """Run on the schedule (and once at start when `run_on_start`) until `stop`, or,
        when called from the main thread, until SIGINT or SIGTERM; then stop the actors
        and return. It blocks the calling thread (and an event loop running there)."""
        scheduled = ScheduledRuns(self._actors().registry, self.config.schedule)
        scheduled.start()
        restore = self._stop_on_signals()
        try:
            if self.config.reconciliation.run_on_start:
                self.run_once()
            self._stop.wait()
        finally:
            restore()
            scheduled.shutdown()
            self.close()
            self._stop.clear()  # it may be started again

    def stop(self) -> None:
        """Make `start` return (from any thread or a signal handler)."""
        self._stop.set()

    def _stop_on_signals(self) -> Callable[[], None]:
        """SIGINT and SIGTERM stop the job while it runs; the returned function puts the
        previous handlers back. Only the main thread can set handlers: elsewhere, none."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: stopping the reconciliation job", signum)
            self.stop()

        previous = {signum: signal.signal(signum, on_signal)
                    for signum in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

        return restore

    def close(self) -> None:
        """Stop the actors and close the venues."""
        with self._started:
            if self.system is not None:
                self.system.stop()
                self.system = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reconciliation_job",
                                     description="Reconcile the ledger with the exchanges.")
    parser.add_argument("--config", type=Path, help="TOML configuration file (orderd's)")
    parser.add_argument("--run-once", action="store_true", help="run once, then exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"reconciliation_job: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    job = ReconciliationJob(config)
    try:
        return _run(job, config, args.run_once)
    except StateDirInUse as exc:
        print(f"reconciliation_job: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as exc:  # its message names the configuration key
        print(f"reconciliation_job: cannot start: {exc}", file=sys.stderr)
        return EXIT_START


def _run(job: ReconciliationJob, config: Config, run_once: bool) -> int:
    if run_once:
        try:
            report = job.run_once()
        finally:
            job.close()
        counts = {name: s["counts"] for name, s in report["exchanges"].items()}
        print(json.dumps({"run_id": report["run_id"], "report_file": str(config.report_file),
                          "counts": counts}))
        return 0
    job.start()  # until SIGINT or SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
