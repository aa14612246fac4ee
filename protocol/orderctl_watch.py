"""`orderctl watch`: order events as the daemon publishes them, one line each."""

from __future__ import annotations

import argparse
import sys

from protocol.client import EventSubscriber, NoAnswer
from protocol.messages import OrderStatus, words
from protocol.orderctl_render import render_event, to_json

POLL_S = 1.0
"""How often a quiet watch wakes, so Ctrl-C ends it at once."""


def add_watch_arguments(watching: argparse.ArgumentParser) -> None:
    watching.add_argument("--status", action="append", choices=words(OrderStatus),
                          help="only events of this status (repeat for several)")
    watching.add_argument("--count", type=int, help="stop after this many events")


def watch(args: argparse.Namespace) -> int:
    """Print events until Ctrl-C or `--count` of them; a gap in their numbers is said."""
    topics = [f"order.{status}" for status in args.status or []] or ["order."]
    subscriber = EventSubscriber(args.events, topic=topics[0], client_key_file=args.client_key,
                                 server_key_file=args.server_key)
    for topic in topics[1:]:
        subscriber.subscribe(topic)
    seen, last_seq = 0, None
    try:
        while args.count is None or seen < args.count:
            try:
                topic, event = subscriber.receive(POLL_S)
            except NoAnswer:
                continue
            seen += 1
            seq = event.get("seq")
            if not args.status and isinstance(last_seq, int) and isinstance(seq, int) \
                    and seq > last_seq + 1:
                print(f"orderctl: a gap in event numbers ({last_seq + 1}..{seq - 1}); "
                      "`orderctl list` catches up", file=sys.stderr)
            last_seq = seq
            print(to_json(event, indent=None) if args.json else render_event(topic, event),
                  flush=True)
    except KeyboardInterrupt:
        print(file=sys.stderr)
    finally:
        subscriber.close()
    return 0
