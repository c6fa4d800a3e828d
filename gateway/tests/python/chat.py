"""The official Python client (python-socketio) against the gateway.

    chat.py --url URL --username U --password P [--cookie-origin ORIGIN]

Logs in over HTTP (POST /api/login), then connects over websocket. Without --cookie-origin it
connects with auth={"token": ...}, joins a room, sends a message and waits for it to come
back. With --cookie-origin it connects with the session cookie and that Origin header instead
and reports the connect_error message. Prints one JSON line: {"ok": true, ...} or
{"ok": false, "error": ...}.
"""

import argparse
import json
import sys
import threading

import requests
import socketio

TIMEOUT = 10


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--cookie-origin")
    args = parser.parse_args()

    login = requests.post(
        f"{args.url}/api/login",
        json={"username": args.username, "password": args.password},
        timeout=TIMEOUT,
    )
    if login.status_code != 200:
        return {"ok": False, "error": f"login answered {login.status_code}: {login.text}"}
    token = login.json()["token"]

    # websocket-client sends the Origin it is given (by default its own guess, the server's).
    extra = {"origin": args.cookie_origin} if args.cookie_origin else {}
    sio = socketio.Client(reconnection=False, websocket_extra_options=extra)
    welcome = threading.Event()
    message = threading.Event()
    refused = {}
    received = {}

    @sio.on("welcome")
    def on_welcome(data):
        received["welcome"] = data
        welcome.set()

    @sio.on("message")
    def on_message(data):
        received["message"] = data
        message.set()

    @sio.on("connect_error")
    def on_connect_error(data):
        refused["message"] = data.get("message") if isinstance(data, dict) else str(data)

    if args.cookie_origin:
        headers = {"Cookie": f"gw_session={token}"}
        try:
            sio.connect(args.url, headers=headers, transports=["websocket"], wait_timeout=TIMEOUT)
        except socketio.exceptions.ConnectionError as err:
            return {"ok": True, "refused": refused.get("message", str(err))}
        sio.disconnect()
        return {"ok": False, "error": "connected with the cookie from a foreign origin"}

    sio.connect(args.url, auth={"token": token}, transports=["websocket"], wait_timeout=TIMEOUT)
    if not welcome.wait(TIMEOUT):
        return {"ok": False, "error": "no welcome"}
    joined = sio.call("join", {"room": "python"}, timeout=TIMEOUT)
    if joined != {"ok": True}:
        return {"ok": False, "error": f"join acked {joined}"}
    sent = sio.call("message", {"room": "python", "text": "hello from python"}, timeout=TIMEOUT)
    if not message.wait(TIMEOUT):
        return {"ok": False, "error": "the message did not come back"}
    got = received["message"]
    sio.disconnect()
    ok = got.get("id") == sent.get("id") and got.get("text") == "hello from python"
    return {
        "ok": ok,
        "transport": sio.transport(),
        "instance": received["welcome"].get("instance"),
        "message": got,
    }


if __name__ == "__main__":
    try:
        summary = main()
    except Exception as err:  # the harness shows the reason
        summary = {"ok": False, "error": f"{type(err).__name__}: {err}"}
    print(json.dumps(summary))
    sys.exit(0 if summary.get("ok") else 1)
