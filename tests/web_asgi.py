"""Calling the status page's ASGI app directly (no sockets), for the fast
tests: `call` makes one request and returns (status, headers, body);
`events` reads server-sent events from ``/events`` as they come."""

import json

import anyio


def _scope(method, target, headers):
    path, _, qs = target.partition("?")
    hs = {"host": "127.0.0.1:8765"}
    hs.update({k.lower(): v for k, v in headers.items()})
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": qs.encode(),
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in hs.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8765),
    }


class Response:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b""

    @property
    def text(self):
        return self.body.decode()

    def json(self):
        return json.loads(self.body)


async def call(app, method, target, headers=None, body=b""):
    """One request; a `Response` (status, headers: {name: value}, body)."""
    if isinstance(body, str):
        body = body.encode()
    res = Response()
    done = False

    async def receive():
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()

    async def send(msg):
        if msg["type"] == "http.response.start":
            res.status = msg["status"]
            res.headers = {k.decode().lower(): v.decode() for k, v in msg.get("headers") or ()}
        elif msg["type"] == "http.response.body":
            res.body += msg.get("body", b"")

    await app(_scope(method, target, headers or {}), receive, send)
    return res


async def events(app, target, got, headers=None):
    """Read ``target`` (an event stream) until cancelled; append each
    event to ``got`` as (event, data) (data parsed as JSON)."""
    buf = ""

    async def receive():
        await anyio.sleep_forever()

    async def send(msg):
        nonlocal buf
        if msg["type"] != "http.response.body":
            return
        buf += msg.get("body", b"").decode()
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            ev, data = "message", None
            for line in block.splitlines():
                if line.startswith("event: "):
                    ev = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if data is not None:
                got.append((ev, data))

    await app(_scope("GET", target, headers or {}), receive, send)
