"""A python-socketio client (unmodified, from PyPI) against Ringcast's livestream service.

Usage: python python_client.py '<json config>'   config: {base, streamId, token}
Connects with the token in the Socket.IO auth, joins the chat room and sends a message (which
comes back as chat:message), joins the stream as a viewer (stream:join:ack and the server's
offer as stream:offer:received), answers it, leaves, and prints one JSON summary line.
"""

import json
import random
import string
import sys
import threading

import socketio


def answer_for(offer_sdp):
    """A well-formed viewer answer to the server's sendonly offer (no media stack needed)."""
    token = lambda n: "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))
    fingerprint = ":".join("%02X" % random.randrange(256) for _ in range(32))
    ufrag, pwd = token(8), token(24)
    out = []
    for line in offer_sdp.splitlines():
        if not line or line in ("a=ice-lite", "a=end-of-candidates"):
            continue
        if line.startswith(("a=candidate:", "a=ssrc", "a=msid:")):
            continue
        if line.startswith("a=ice-ufrag:"):
            line = "a=ice-ufrag:" + ufrag
        elif line.startswith("a=ice-pwd:"):
            line = "a=ice-pwd:" + pwd
        elif line.startswith("a=fingerprint:"):
            line = "a=fingerprint:sha-256 " + fingerprint
        elif line == "a=setup:actpass":
            line = "a=setup:active"
        elif line == "a=sendonly":
            line = "a=recvonly"
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def main():
    cfg = json.loads(sys.argv[1])
    stream_id = cfg["streamId"]
    sio = socketio.Client(reconnection=False)
    got = {}
    events = {name: threading.Event() for name in ("chat", "join_ack", "offer")}

    @sio.on("chat:message")
    def on_chat(data):
        got["chat"] = data
        events["chat"].set()

    @sio.on("stream:join:ack")
    def on_join_ack(data):
        got["join_ack"] = data
        events["join_ack"].set()

    @sio.on("stream:offer:received")
    def on_offer(data):
        got["offer"] = data
        events["offer"].set()

    @sio.on("stream:error")
    def on_error(data):
        got.setdefault("errors", []).append(data)

    sio.connect(cfg["base"], auth={"token": cfg["token"]}, transports=["websocket"], wait_timeout=10)
    joined_chat = sio.call("join-livestream", {"streamId": stream_id}, timeout=10)
    assert joined_chat["success"], joined_chat
    sent = sio.call("chat:message", {"streamId": stream_id, "message": "hello from python"}, timeout=10)
    assert sent["success"], sent
    assert events["chat"].wait(10), "no chat:message broadcast"
    joined = sio.call("stream:join", {"streamId": stream_id}, timeout=10)
    assert joined["success"], joined
    assert events["join_ack"].wait(10) and events["offer"].wait(10), got
    offer = got["offer"]["offer"]
    answered = sio.call(
        "stream:answer",
        {"streamId": stream_id, "answer": {"type": "answer", "sdp": answer_for(offer["sdp"])}},
        timeout=10,
    )
    left = sio.call("stream:leave", {"streamId": stream_id}, timeout=10)
    assert left["success"], left
    sio.disconnect()
    print(json.dumps({"summary": {
        "chatEcho": got["chat"]["message"],
        "chatUser": got["chat"]["userId"],
        "joined": got["join_ack"]["success"],
        "viewerCount": got["join_ack"]["viewerCount"],
        "offerType": offer["type"],
        "answerAccepted": answered.get("success") is True,
        "errors": got.get("errors", []),
    }}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the test prints stdout and stderr on failure
        print(json.dumps({"error": repr(e)}), flush=True)
        raise
