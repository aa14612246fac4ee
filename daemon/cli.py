"""`orderd`: run the daemon, or check a configuration file."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from daemon import __version__, paper_venue_cli
from daemon.app import Daemon
from daemon.config import Config, load_config
from daemon.config_loader import ConfigError

EXIT_CONFIG = 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
        print(f"orderd: configuration {path or '(defaults)'} is valid")
        return 0
    return run(config)


def run(config: Config) -> int:
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    daemon = Daemon(config)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("orderd").info("received %s", signal.Signals(signum).name)
        daemon.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        daemon.start()
    except Exception as exc:
        logging.getLogger("orderd").exception("start-up failed: %s", exc)
        daemon.stop()
        return 1
    daemon.wait()
    daemon.stop()
    return daemon.exit_code


if __name__ == "__main__":
    sys.exit(main())
