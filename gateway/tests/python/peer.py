"""One chat participant on python-socketio, driven line by line by a test.

    peer.py --url URL --token=TOKEN --transport websocket|polling --room ROOM [--timeout-ms N]

The same line protocol as tests/node/peer.mjs (the official JavaScript client), so that a test
can put the two clients in one conversation. Connects with auth={"token": ...} over the one
transport given, waits for `welcome`, joins ROOM, and prints one JSON line per step on stdout:

    {"step": "ready", "instance": ..., "sid": ..., "transport": ...}   joined, listening
    {"step": "sent", "ids": [...]}          after {"send": [text, ...]}: each acked, in order
    {"step": "dm_sent", "id": ...}          after {"dm": {"to": user, "text": ...}}
    {"step": "report", "messages": [...], "dms": [...]}
                                            after {"await": {"messages": N, "dms": M}}: once
                                            N `message` and M `dm` events arrived (own echoes
                                            count), and 300 ms later, every event received
    {"ok": false, "error": ...}             on any failure, then exit 1

Each command is one JSON line on stdin. It exits 0 after {"bye": true} or when stdin closes,
and 1 after --timeout-ms (default 20000) whatever it was doing.
"""

import argparse
import json
import os
import sys
import threading
import time

import socketio

QUIET_S = 0.3
PRINT = threading.Lock()


def emit_line(line):
    with PRINT:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def fail(error):
    emit_line({"ok": False, "error": error})
    os._exit(1)


class Inbox:
    """The `message` and `dm` events received, in arrival order."""

    def __init__(self):
        self.changed = threading.Condition()
        self.messages = []
        self.dms = []

    def add(self, kind, data):
        with self.changed:
            getattr(self, kind).append(data)
            self.changed.notify_all()

    def wait_for(self, messages, dms, deadline):
        with self.changed:
            while len(self.messages) < messages or len(self.dms) < dms:
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"awaited {messages} messages and {dms} dms, got "
                         f"{len(self.messages)} and {len(self.dms)}: {self.messages} {self.dms}")
                self.changed.wait(left)
        time.sleep(QUIET_S)
        with self.changed:
            return {"step": "report", "messages": list(self.messages), "dms": list(self.dms)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--transport", choices=["websocket", "polling"], required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--timeout-ms", type=int, default=20000)
    args = parser.parse_args()
    timeout = args.timeout_ms / 1000
    deadline = time.monotonic() + timeout
    timer = threading.Timer(timeout, fail, [f"overall timeout after {args.timeout_ms} ms"])
    timer.daemon = True
    timer.start()

    sio = socketio.Client(reconnection=False)
    inbox = Inbox()
    welcome = threading.Event()
    received = {}

    @sio.on("welcome")
    def on_welcome(data):
        received["welcome"] = data
        welcome.set()

    sio.on("message", lambda data: inbox.add("messages", data))
    sio.on("dm", lambda data: inbox.add("dms", data))
    sio.on("disconnect", lambda *_: None)

    left = lambda: max(0.1, deadline - time.monotonic())  # noqa: E731
    sio.connect(args.url, auth={"token": args.token}, transports=[args.transport],
                wait_timeout=left())
    if not welcome.wait(left()):
        fail("no welcome")
    joined = sio.call("join", {"room": args.room}, timeout=left())
    if joined != {"ok": True}:
        fail(f"join acked {joined}")
    emit_line({"step": "ready", "instance": received["welcome"].get("instance"),
               "sid": sio.get_sid(), "transport": sio.transport()})

    def acked(event, data):
        ack = sio.call(event, data, timeout=left())
        if not isinstance(ack, dict) or not isinstance(ack.get("id"), str):
            fail(f"{event} acked {ack}")
        return ack["id"]

    for line in sys.stdin:
        command = json.loads(line)
        if "send" in command:
            ids = [acked("message", {"room": args.room, "text": text})
                   for text in command["send"]]
            emit_line({"step": "sent", "ids": ids})
        elif "dm" in command:
            emit_line({"step": "dm_sent", "id": acked("dm", command["dm"])})
        elif "await" in command:
            wanted = command["await"]
            emit_line(inbox.wait_for(wanted["messages"], wanted["dms"], deadline))
        elif command.get("bye"):
            break
        else:
            fail(f"unknown command {line.strip()}")
    sio.disconnect()
    os._exit(0)


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # the harness shows the reason
        fail(f"{type(err).__name__}: {err}")
