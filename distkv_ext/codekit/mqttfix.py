"""Repairs of moat-mqtt 0.39.8's client, so that a DistKV server survives
a restart of its MQTT broker (applied by `distkv_main`, which runs the
servers).

Without them a server whose broker restarts is deaf and mute for good,
while its clients see nothing wrong:

1. The client never notices that the broker went away.  Its keep-alive
   timer (``ProtocolHandler._timeout_loop``) loops forever without ever
   reporting a time-out, and it runs inside the reader's task group, so
   the reader, which saw the end of the stream, waits for it for ever and
   never reports the disconnect.  Repaired: the timer pings the broker
   when nothing came for a keep-alive period and, if nothing comes back
   within half of one more, ends the reader (which then reports the
   disconnect as moat-mqtt intends; its reconnect re-subscribes).
2. The reconnect gives up at the first refused connection (it retries
   only on ``SyntaxError``), so a broker that needs a second to come back
   is never reached again.  Repaired: it retries until the broker answers,
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

Nothing installed is edited: `apply` patches four methods at run time,
once.  The patches are specific to the pinned moat-mqtt (constraints.txt).
"""

import importlib.metadata
import logging

import anyio
from moat.mqtt.client import ConnectException

__all__ = ["apply"]

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
        reader = self._reader_task
        if reader is not None:
            reader.cancel_scope.cancel()
        return


def _patient_reconnect(orig):
    async def reconnect(self, cleansession=None):
        delay = 0.5
        while True:
            try:
                return await orig(self, cleansession)
            except ConnectException as exc:
                logger.warning("MQTT broker unreachable (%r): trying again in %.1f s", exc, delay)
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
FOR_VERSION = "0.39.8"


def _draining_stop(orig):
    async def stop(self):
        try:
            await orig(self)
        finally:
            # taking an item from a full queue lets a waiting sender in
            # (and wakes it): empty it, waiting senders included
            while True:
                try:
                    self._send_q.get_nowait()
                except anyio.WouldBlock:
                    break

    return stop


def apply():
    """Apply the repairs (idempotent).  Not applied (a warning says so) to
    another moat-mqtt release than `FOR_VERSION`: they replace its code."""
    global _applied  # pylint: disable=global-statement
    if _applied:
        return
    _applied = True
    have = importlib.metadata.version("moat-mqtt")
    if have != FOR_VERSION:
        logger.warning("moat-mqtt %s is not %s: its broker-restart repairs are not applied", have, FOR_VERSION)
        return
    from moat.mqtt.client import MQTTClient
    from moat.mqtt.mqtt.protocol.client_handler import ClientProtocolHandler
    from moat.mqtt.mqtt.protocol.handler import ProtocolHandler

    ProtocolHandler._timeout_loop = _timeout_loop
    ClientProtocolHandler.stop = _draining_stop(ClientProtocolHandler.stop)
    MQTTClient.reconnect = _patient_reconnect(MQTTClient.reconnect)
    MQTTClient._connect_coro = _waking_connect(MQTTClient._connect_coro)
