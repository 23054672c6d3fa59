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

__all__ = ["Proxy"]


class Proxy:
    def __init__(self, target_port, port):
        self.target = ("127.0.0.1", target_port)
        self.port = port
        self.mode = "ok"
        self._lock = threading.Lock()
        self._pairs = {}  # socket -> peer socket
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
            try:
                self._sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def _loop(self):
        import time

        while not self._stop:
            if self.mode == "frozen":  # nothing moves, not even new connections
                time.sleep(0.05)
                continue
            for key, _ in self._sel.select(0.05):
                s = key.fileobj
                with self._lock:
                    if s is self._listen:
                        self._accept()
                    elif self.mode == "ok" and s in self._pairs:
                        self._forward(s)

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
        for x in (c, t):
            x.setblocking(False)
            self._sel.register(x, selectors.EVENT_READ)
        self._pairs[c] = t
        self._pairs[t] = c

    def _forward(self, s):
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(s)
            return
        peer = self._pairs[s]
        try:
            peer.setblocking(True)
            peer.sendall(data)
            peer.setblocking(False)
        except OSError:
            self._close(s)
