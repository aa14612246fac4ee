"""The orderd wire protocol, version 1: messages, codec, validation and a client.

Uses only the standard library and pyzmq, so a client can depend on it alone.
"""

PROTOCOL_VERSION = 1
