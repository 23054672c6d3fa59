"""Repairs of moat-mqtt 0.39.8's client, so that a DistKV server survives
a restart of its MQTT broker (applied by `distkv_ext.codekit.upstream.apply_server`).

Without them a server whose broker restarts is deaf and mute for good,
while its clients see nothing wrong:

1. The client never notices that the broker went away.  Its keep-alive
   timer (``ProtocolHandler._timeout_loop``) loops forever without ever
   reporting a time-out, and it runs inside the reader's task group, so
   the reader, which saw the end of the stream, waits for it for ever and
   never reports the disconnect.  Repaired: the end of the stream ends
   the reader's task group at once; and (for a broker that vanished
   without closing the connection) the timer pings the broker when
   nothing came for a keep-alive period and, if nothing comes back within
   half of one more, ends the reader too.  The reader then reports the
   disconnect as moat-mqtt intends, and its reconnect re-subscribes.
2. The reconnect gives up at the first refused connection (it retries
   only on ``SyntaxError``), so a broker that needs a second to come back
   is never reached again; a connection reset during the handshake even
   crashes the client.  Repaired: it retries until the broker answers,
   waiting up to ``reconnect_max_interval`` (10 s) between attempts.
3. A publish made while disconnected waits for the "connected" event, but
   every connection attempt replaces that event with a new one, so the
   publish waits for ever (and with it the DistKV request that made it: a
   runner's heartbeats stopped for good).  Repaired: a successful connect
   also sets the events that earlier attempts replaced.
4. A publish made before the client noticed the lost connection waits in
   the dead connection's send queue for ever once that queue is full.
   Repaired: a stopped connection empties its queue (and so lets such
   publishes finish: their messages are lost, as QoS 0 messages sent into
   a dead connection are).

Nothing installed is edited: `apply` patches six names at run time,
once.  The patches are specific to the pinned moat-mqtt (constraints.txt).
"""

import importlib.metadata
import logging
import weakref

import anyio
from moat.mqtt.client import ConnectException

__all__ = ["apply", "PACKAGE", "TARGET"]

PACKAGE = "moat-mqtt"
#: The release this repair was written for (see `distkv_ext.codekit.upstream`).
TARGET = "0.39.8"

logger = logging.getLogger(__name__)

_applied = False


async def _timeout_loop(self):
    """Keep-alive watch of one connection: ends the reader when the broker
    stays silent for a keep-alive period and does not answer a ping."""
    keepalive = self.session.keep_alive if self.session else 0
    if not keepalive or keepalive <= 0:
        return
    while True:
        got = self._got_packet
        with anyio.move_on_after(keepalive):
            await got.wait()
            if self._got_packet is got:
                self._got_packet = anyio.Event()
            continue
        # silent for a whole period: ask, and give it half a period more
        await self.handle_write_timeout()  # the client handler sends a PINGREQ
        with anyio.move_on_after(keepalive / 2):
            await self._got_packet.wait()
            continue
        client_id = self.session.client_id if self.session else "?"
        logger.warning("%s: the MQTT broker has been silent for %.0f s: reconnecting", client_id, keepalive * 1.5)
        _end_reader(self)
        return


def _end_reader(handler):
    """End a dead connection: its reader (which then reports the
    disconnect) and its sender (which may hang writing to it)."""
    handler._distkv_code_ended = True
    reader = handler._reader_task
    if reader is not None:
        reader.cancel_scope.cancel()
    sender = handler._sender_task
    if sender is not None:
        sender.cancel()


def _registering_attach(orig):
    async def attach(self, session, stream):
        await orig(self, session, stream)
        stream._distkv_code_handler = weakref.ref(self)

    return attach


def _eof_ends_reader(base):
    class FixedHeader(base):
        """Reads a packet header; at the end of the stream it also ends
        the reading handler's task group (see the module doc, 1)."""

        @classmethod
        async def from_stream(cls, reader):
            res = await super().from_stream(reader)
            if res is None:
                ref = getattr(reader, "_distkv_code_handler", None)
                handler = ref() if ref is not None else None
                if handler is not None:
                    _end_reader(handler)
            return res

    FixedHeader.__name__ = FixedHeader.__qualname__ = base.__name__
    return FixedHeader


#: what a connection attempt that met a dead or dying broker raises
_CONNECT_ERRORS = (ConnectException, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)


def _patient_reconnect(orig):
    async def reconnect(self, cleansession=None):
        delay = 0.5
        while True:
            try:
                # a broker that is still starting may never answer the
                # handshake: give each attempt a bound
                with anyio.fail_after(10):
                    return await orig(self, cleansession)
            except (TimeoutError, *_CONNECT_ERRORS) as exc:
                logger.warning("MQTT broker unreachable (%r): trying again in %.1f s", exc, delay)
                if not isinstance(exc, ConnectException) and self._handler is not None:
                    # failed during the handshake: moat-mqtt leaves that
                    # connection's handler (and its sender task) behind
                    with anyio.move_on_after(2, shield=True):
                        try:
                            await self._handler.stop()
                        except Exception:
                            pass
                await anyio.sleep(delay)
                delay = min(2 * delay, float(self.config.get("reconnect_max_interval", 10)))

    reconnect.__doc__ = orig.__doc__
    return reconnect


def _waking_connect(orig):
    async def _connect_coro(self):
        waiting = self.__dict__.setdefault("_distkv_code_waiting", [])
        waiting.append(self._connected_state)  # replaced by this attempt
        res = await orig(self)
        if self._connected_state.is_set():
            for evt in waiting:
                evt.set()
            waiting.clear()
        return res

    return _connect_coro


#: the moat-mqtt release these repairs are written for


def _drain(queue):
    # taking an item from a full queue lets a waiting sender in (and wakes
    # it): this empties it, waiting senders included
    while True:
        try:
            queue.get_nowait()
        except anyio.WouldBlock:
            return


def _draining_stop(orig):
    async def stop(self):
        if not getattr(self, "_distkv_code_ended", False):
            try:
                await orig(self)
            finally:
                _drain(self._send_q)
            return
        # we ended this connection (its sender is cancelled): moat-mqtt's
        # stop queues a "close" for the sender and waits; keep the queue
        # empty meanwhile, or that wait never ends
        async with anyio.create_task_group() as tg:

            async def drain():
                while True:
                    _drain(self._send_q)
                    await anyio.sleep(0.05)

            tg.start_soon(drain)
            try:
                await orig(self)
            finally:
                tg.cancel_scope.cancel()
        _drain(self._send_q)

    return stop


def apply():
    """Apply the repairs (idempotent).  Not applied (a warning says so) to
    another moat-mqtt release than `TARGET`: they replace its code."""
    global _applied
    if _applied:
        return
    _applied = True
    have = importlib.metadata.version("moat-mqtt")
    if have != TARGET:
        logger.warning("moat-mqtt %s is not %s: its broker-restart repairs are not applied", have, TARGET)
        return
    # only now: another release may not have these names
    from moat.mqtt.client import MQTTClient
    from moat.mqtt.mqtt.protocol import handler
    from moat.mqtt.mqtt.protocol.client_handler import ClientProtocolHandler
    from moat.mqtt.mqtt.protocol.handler import ProtocolHandler

    ProtocolHandler._timeout_loop = _timeout_loop
    ProtocolHandler.attach = _registering_attach(ProtocolHandler.attach)
    handler.MQTTFixedHeader = _eof_ends_reader(handler.MQTTFixedHeader)
    ClientProtocolHandler.stop = _draining_stop(ClientProtocolHandler.stop)
    MQTTClient.reconnect = _patient_reconnect(MQTTClient.reconnect)
    MQTTClient._connect_coro = _waking_connect(MQTTClient._connect_coro)
