"""A TCP proxy on loopback that a drill can cut: the cable between a
runner and its server, or between a server and the broker.

``freeze()`` stops forwarding (connections stay open, bytes wait in the
kernel: a stalled link, as when a switch dies); ``drop()`` closes every
connection and refuses new ones (as when a host's network goes down);
``heal()`` restores normal forwarding.
"""

import selectors
import socket
import threading
import time

__all__ = ["Proxy"]


class Proxy:
    """Forwards ``port`` to ``target_port``, both on loopback, in a thread.

    Each direction of each connection has its own buffer (at most
    `BUFFER` bytes; a full one stops reading from its source, as a TCP
    window does): a peer that does not read stalls only what goes to it.
    (Forwarding with a blocking ``sendall`` once stalled the whole proxy:
    a broker that wrote back to the client while the proxy blocked writing
    to it waited for the proxy, which waited for the broker, and no new
    connection was accepted again.)
    """

    #: bytes waiting for one socket, at most, before its source is not read
    BUFFER = 1 << 20

    def __init__(self, target_port, port):
        self.target = ("127.0.0.1", target_port)
        self.port = port
        self.mode = "ok"
        self._lock = threading.Lock()
        self._pairs = {}  # socket -> peer socket
        self._out = {}  # socket -> bytes waiting to be sent to it
        self._eof = set()  # sockets whose peer closed: closed once their buffer is sent
        self._events = {}  # socket -> the events it is registered for (absent: none)
        self._sel = selectors.DefaultSelector()
        self._listen = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._listen.setblocking(False)
        self._sel.register(self._listen, selectors.EVENT_READ)
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def freeze(self):
        self.mode = "frozen"

    def drop(self):
        self.mode = "dropped"
        with self._lock:
            for s in list(self._pairs):
                self._close(s)

    def heal(self):
        self.mode = "ok"

    def close(self):
        self._stop = True
        self._thread.join(5)
        with self._lock:
            for s in list(self._pairs):
                self._close(s)
        self._listen.close()

    def _close(self, s):
        peer = self._pairs.pop(s, None)
        for x in (s, peer):
            if x is None:
                continue
            self._pairs.pop(x, None)
            self._out.pop(x, None)
            self._eof.discard(x)
            if self._events.pop(x, None) is not None:
                self._sel.unregister(x)
            x.close()

    def _loop(self):
        while not self._stop:
            if self.mode == "frozen":  # nothing moves, not even new connections
                time.sleep(0.05)
                continue
            for key, events in self._sel.select(0.05):
                s = key.fileobj
                with self._lock:
                    if s is self._listen:
                        self._accept()
                        continue
                    if self.mode != "ok" or s not in self._pairs:
                        continue
                    if events & selectors.EVENT_WRITE:
                        self._send(s)
                    if events & selectors.EVENT_READ and s in self._pairs:
                        self._receive(s)

    def _accept(self):
        try:
            c, _ = self._listen.accept()
        except OSError:
            return
        if self.mode == "dropped":
            c.close()
            return
        try:
            t = socket.create_connection(self.target, timeout=2)
        except OSError:
            c.close()
            return
        for x, peer in ((c, t), (t, c)):
            x.setblocking(False)
            self._pairs[x] = peer
            self._out[x] = bytearray()
        self._watch(c)
        self._watch(t)

    def _watch(self, s):
        """Register ``s`` for what it can do now: read while its peer's
        buffer has room (and its peer is open), write while its own has bytes."""
        peer = self._pairs[s]
        want = 0
        if len(self._out[peer]) < self.BUFFER and s not in self._eof and peer not in self._eof:
            want |= selectors.EVENT_READ
        if self._out[s]:
            want |= selectors.EVENT_WRITE
        had = self._events.get(s)
        if want == had:
            return
        if had is None:
            self._sel.register(s, want)
        elif want:
            self._sel.modify(s, want)
        else:
            self._sel.unregister(s)
        if want:
            self._events[s] = want
        else:
            self._events.pop(s, None)

    def _receive(self, s):
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        peer = self._pairs[s]
        if not data:  # closed: what it sent before still goes to the peer
            self._eof.add(peer)
            if not self._out[peer]:
                self._close(s)
                return
        else:
            self._out[peer] += data
        self._watch(s)
        self._watch(peer)

    def _send(self, s):
        buf = self._out[s]
        try:
            n = s.send(buf)
        except BlockingIOError:
            return
        except OSError:
            self._close(s)
            return
        del buf[:n]
        if not buf and s in self._eof:
            self._close(s)
            return
        self._watch(s)
        self._watch(self._pairs[s])
