"""orderd process plumbing: CLI, configuration, wiring, ZeroMQ front end."""

__version__ = "0.1.0"
