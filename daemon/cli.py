"""`orderd`: run the daemon, or check a configuration file."""

from __future__ import annotations

import argparse
import gc
import logging
import queue
import signal
import sys
from pathlib import Path
from types import FrameType

from daemon import __version__, paper_venue_cli
from daemon.affinity import pin
from daemon.app import Daemon
from daemon.config import Config, load_config
from daemon.config_loader import ConfigError
from daemon.logs import configure, thread_stacks
from daemon.startup import EXIT_CONFIG, EXIT_START, StartupError, problems
from daemon.state_lock import StateDirInUse
from daemon.wiring import credentials

STOP_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)
SELF_STOP = 0
"""Not a signal: the daemon asked to stop (a restart storm), with its own exit status."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderd", description="Resilient order-execution daemon.")
    parser.add_argument("--version", action="version", version=f"orderd {__version__}")
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the daemon (the default)")
    check = commands.add_parser("check-config", help="check the configuration and exit")
    check.add_argument("--config", type=Path, dest="check_config", help="TOML file")
    paper_venue_cli.add_parser(commands)
    return parser


def _load(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"orderd: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "paper-venue":
        return paper_venue_cli.run(args)
    path = getattr(args, "check_config", None) or args.config
    config = _load(path)
    if args.command == "check-config":
        return check(config, path)
    return run(config, path)


def check(config: Config, path: Path | None) -> int:
    """check-config: the file, then what would stop it from starting here and now."""
    found = problems(config)
    for problem in found:
        print(f"orderd: cannot start: {problem}", file=sys.stderr)
    if found:
        return EXIT_START
    print(f"orderd: configuration {path or '(defaults)'} is valid")
    return 0


def _pin_threads(config: Config, log: logging.Logger) -> None:
    """Keep this thread, and so every thread of the daemon, on the configured CPU."""
    try:
        cpu = pin(config.cpu)
    except ValueError as exc:  # the CPU is not on this machine: a configuration error
        print(f"orderd: configuration error: cpu: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    except OSError as exc:  # e.g. a container that forbids it: the daemon works anyway
        log.warning("threads run on any CPU: keeping them on one was refused (%s)", exc)
        return
    if cpu is not None:
        log.info("threads run on CPU %d (cpu = %r)", cpu, config.cpu)


def credentials_of(config: Config) -> list[str]:
    """Every configured API key and secret: the log masks them wherever they appear."""
    return [value for exchange in config.exchanges if exchange.driver != "paper"
            for value in credentials(exchange)]


def run(config: Config, path: Path | None = None) -> int:
    configure(config.log_level, config.log_format, secrets=credentials_of(config))
    # What is loaded by now lives as long as the process (ccxt alone is some 160,000
    # objects); frozen, it is no longer walked by every full collection, which
    # stopped all threads for 68..94 ms every 10,000 orders or so.
    gc.collect()
    gc.freeze()
    log = logging.getLogger("orderd")
    _pin_threads(config, log)  # before any thread starts: they all inherit it
    daemon = Daemon(config, config_path=path)
    # handlers only queue the signal (SimpleQueue.put is safe there); the main
    # thread acts on it, so a reload never runs inside a signal handler
    received: queue.SimpleQueue[int] = queue.SimpleQueue()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.put(signum)
        if signum in STOP_SIGNALS:
            daemon.request_stop()

    for handled in (*STOP_SIGNALS, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(handled, on_signal)
    daemon.on_stop_request = lambda: received.put(SELF_STOP)
    try:
        daemon.start()
    except StateDirInUse as exc:  # nothing was touched
        print(f"orderd: {exc}", file=sys.stderr)
        daemon.stop()
        return EXIT_CONFIG
    except StartupError as exc:
        log.error("start-up failed: %s", exc)
        daemon.stop()
        return EXIT_START
    except Exception as exc:
        log.exception("start-up failed: %s", exc)
        daemon.stop()
        return EXIT_START
    while (signum := received.get()) not in (*STOP_SIGNALS, SELF_STOP):
        if signum == signal.SIGHUP:
            log.info("received SIGHUP: reloading")
            daemon.reload()
        elif signum == signal.SIGUSR1:
            log.warning("received SIGUSR1: stacks of every thread follow\n%s", thread_stacks())
    if signum == SELF_STOP:
        log.critical("stopping: %s", daemon.state.reason or "asked to stop")
    else:
        log.info("received %s", signal.Signals(signum).name)
    daemon.stop()
    return daemon.exit_code


if __name__ == "__main__":
    sys.exit(main())
