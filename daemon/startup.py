"""What must hold before the daemon serves: its state_dir writable, its sockets and its
metrics port free. A failure stops start-up at once with a message naming the
configuration key; `orderd check-config` reports the same problems without starting.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import zmq
from prometheus_client import CollectorRegistry, start_http_server

from actors.metrics.actor import MetricsSettings
from daemon.config import Config
from daemon.state_lock import in_use

T = TypeVar("T")


EXIT_CONFIG = 2
"""The exit status of a configuration that cannot be used (or a state_dir in use)."""
EXIT_START = 1
"""The exit status of a start that failed here and now (a port in use)."""


class StartupError(Exception):
    """Start-up cannot go on; the message names the configuration key."""


def endpoint_problem(endpoint: str) -> str | None:
    """Why `endpoint` (tcp://HOST:PORT or ipc://PATH) cannot be bound now, or None."""
    if endpoint.startswith("ipc://"):
        path = endpoint.removeprefix("ipc://")
        # ZeroMQ would take over a live socket file without a word: ask who answers
        if path.startswith("@") or not Path(path).exists():
            return None
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                return None  # a file left behind by a process that is gone
        return f"{endpoint} is in use"
    host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
    return port_problem(host, int(port))


def port_problem(host: str, port: int) -> str | None:
    """Why HOST:PORT cannot be bound now (e.g. in use), or None."""
    host = host.strip("[]")
    # IPv4 unless the address is IPv6, as ZeroMQ resolves names (its IPv6 is off)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(None if host in ("*", "") else host, port, family,
                                   socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return None  # an interface name ZeroMQ resolves itself: its bind will tell
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ZeroMQ does
        try:
            probe.bind(address)
        except OSError as exc:
            return f"{host}:{port} cannot be bound ({exc.strerror})"
    return None


def state_dir_problem(state_dir: Path) -> str | None:
    """Why files cannot be created in state_dir, or None. Leaves nothing behind."""
    folder = state_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # start-up would create the rest
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"cannot create files in {folder} ({exc.strerror})"
    return None


def problems(config: Config) -> list[str]:
    """What keeps `config` from starting here and now, each naming its key."""
    found: list[str] = []
    state = state_dir_problem(config.state_dir)
    if state is not None:
        found.append(f"state_dir: {state}")
    else:
        owner = in_use(config.state_dir)
        if owner is not None:
            found.append(str(owner))  # it names state_dir itself
    for key, endpoint in (("control.endpoint", config.control.endpoint),
                          ("events.endpoint", config.events.endpoint)):
        problem = endpoint_problem(endpoint)
        if problem is not None:
            found.append(f"{key}: {problem}")
    if config.metrics.listen:
        problem = port_problem(*config.metrics.address())
        if problem is not None:
            found.append(f"metrics.listen: {problem}")
    return found


def bind(key: str, endpoint: str, make: Callable[[], T]) -> T:
    """`make()`, the object that binds `endpoint`; StartupError naming `key` if it cannot."""
    problem = endpoint_problem(endpoint)
    if problem is not None:
        raise StartupError(f"{key}: {problem}")
    try:
        return make()
    except zmq.ZMQError as exc:
        raise StartupError(f"{key}: cannot bind {endpoint} ({exc.strerror})") from None


def serve_metrics(settings: MetricsSettings, registry: CollectorRegistry) -> Any:
    """The HTTP server of /metrics (None when `listen` is empty); StartupError if the
    port cannot be had. Its owner closes it with `close_metrics`."""
    if not settings.listen:
        return None
    host, port = settings.address()
    try:
        server, _thread = start_http_server(port, host, registry=registry)
    except OSError as exc:
        raise StartupError(f"metrics.listen: cannot serve on {settings.listen} "
                           f"({exc.strerror})") from None
    return server


def close_metrics(server: Any) -> None:
    server.shutdown()
    server.server_close()
