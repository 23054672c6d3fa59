"""Who may speak in a group: the group key, MACs, replays, freshness.

`GroupKeys` holds the group's key(s) (``runner: {group_key: FILE,
group_key_next: FILE}``): each message is sent with a MAC (HMAC-SHA256)
over its whole content and the group's topic, made with ``group_key``;
a message with a MAC of either key is accepted, so that a key can be
rotated without a flag day (README, "Trust").  Without a key the group
is unauthenticated: messages carry no MAC, and anybody who can reach a
DistKV server or the MQTT broker can speak in it.

`Channel` is one runner's end of the group channel: `Channel.outgoing`
numbers (``q``), acknowledges and MACs what it sends; `Channel.incoming`
checks what arrives (`_wire.decode`; with a key: the MAC, and the
sender's counter against replays) and drops, counts and logs (at most
once per `LOG_EVERY` seconds) what fails.  Without a key counters are
not checked: anybody could send any counter, and one forged huge
counter would make a real runner's messages look like replays.  A heartbeat is *fresh* (`Channel.fresh`)
when it acknowledges a message this runner sent less than ``timeout``
ago: a recorded heartbeat replayed later acknowledges nothing recent, so
a dead node cannot be kept "alive" by replaying it, and a restarted
runner (a new run id ``i``) is welcome as soon as it has heard us once.
No wall clocks are compared: each runner judges by its own monotonic clock.
"""

import collections
import dataclasses
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from distkv_ext.codekit.core.canon import canonical
from distkv_ext.codekit.core.errors import BadKeyFile
from distkv_ext.codekit.core.keyfile import loose_mode, read_key_file, write_key_file

from ._wire import MAX_ACKS, Kind, Malformed, Message, decode, encode, unpack

logger = logging.getLogger(__name__)

__all__ = ["GroupKeys", "ReplayWindow", "Channel", "LOG_EVERY", "new_instance", "new_group_key", "key_id"]

#: Dropped messages are logged at most this often (seconds), with counts.
LOG_EVERY = 10.0
_WINDOW = 128  # how far back an out-of-order message may come
_MAX_RUNS = 256  # runs (instances) whose counters are remembered
_ALG = "hmac-sha256"


def new_instance() -> str:
    """A new run id (12 hex digits), made at each start of a runner."""
    return os.urandom(6).hex()


def _kid(key: bytes) -> bytes:
    return hashlib.sha256(b"distkv-code group key id\0" + key).digest()[:4]


def key_id(key: bytes) -> str:
    """The id of a group key (8 hex digits; runners and records name keys by it)."""
    return _kid(key).hex()


def new_group_key(filename: str) -> str:
    """Write a new group key (32 random bytes, base64) to the new file
    ``filename`` (mode 0600; an existing file is refused with
    `InputRefused`); return its id."""
    key = os.urandom(32)
    write_key_file(filename, key)
    return key_id(key)


class GroupKeys:
    """The group key (``primary``, used to send) and, during a rotation,
    the next or previous one (``other``, also accepted).  No keys: the
    group is unauthenticated (`keyed` is False)."""

    def __init__(self, primary: bytes | None = None, other: bytes | None = None) -> None:
        if primary is None and other is not None:
            raise ValueError("runner.group_key_next needs runner.group_key")
        self._keys: dict[bytes, bytes] = {}
        self._primary: bytes | None = None
        for k in (primary, other):
            if k is not None:
                self._keys[_kid(k)] = k
        if primary is not None:
            self._primary = _kid(primary)

    def __repr__(self) -> str:
        return f"<GroupKeys {self.describe()}>"  # never the keys

    @classmethod
    def load(cls, group_key: str | None, group_key_next: str | None = None) -> "GroupKeys":
        """The keys in the files ``group_key`` and ``group_key_next`` (None:
        not set).  Raises `BadKeyFile` (naming the setting) for a file that
        cannot be read or holds fewer than 32 bytes; warns when a key file
        can be read by others."""
        keys: list[bytes | None] = []
        for setting, fn in (("runner.group_key", group_key), ("runner.group_key_next", group_key_next)):
            if fn is None:
                keys.append(None)
                continue
            keys.append(read_key_file(fn, setting))
            warn = loose_mode(fn)
            if warn:
                logger.warning("%s: %s", setting, warn)
        try:
            return cls(*keys)
        except ValueError as exc:
            raise BadKeyFile(str(exc)) from None

    @property
    def keyed(self) -> bool:
        """Is the group authenticated (a key is configured)?"""
        return self._primary is not None

    @property
    def key_ids(self) -> list[str]:
        """Hex ids (8 digits) of the keys, the sending key first."""
        return [k.hex() for k in sorted(self._keys, key=lambda k: k != self._primary)]

    def describe(self) -> str:
        """``hmac-sha256 key 1a2b3c4d (+ 5e6f7a8b)`` or ``unauthenticated``."""
        if not self.keyed:
            return "unauthenticated"
        ids = self.key_ids
        return f"{_ALG} key {ids[0]}" + (f" (+ {ids[1]})" if len(ids) > 1 else "")

    @staticmethod
    def _input(topic: Iterable[str], wire: Mapping[str, Any]) -> bytes:
        body = {k: v for k, v in wire.items() if k != "mac"}
        return canonical(["distkv-code group v1", list(topic), body])

    def seal(self, topic: Iterable[str], wire: dict[str, Any]) -> dict[str, Any]:
        """``wire`` with ``kid`` and ``mac`` added (unchanged without a key)."""
        if self._primary is None:
            return wire
        wire["kid"] = self._primary
        wire["mac"] = hmac.digest(self._keys[self._primary], self._input(topic, wire), "sha256")
        return wire

    def check(self, topic: Iterable[str], wire: Mapping[str, Any]) -> str | None:
        """Why the MAC of received ``wire`` is not acceptable (``"no mac"``,
        ``"unknown key"``, ``"bad mac"``), or None when it is.  Without a key
        everything passes (a MAC then means nothing to us)."""
        if self._primary is None:
            return None
        kid, mac = wire.get("kid"), wire.get("mac")
        if not isinstance(kid, bytes) or not isinstance(mac, bytes):
            return "no mac"
        key = self._keys.get(kid)
        if key is None:
            return "unknown key"
        try:
            want = hmac.digest(key, self._input(topic, wire), "sha256")
        except (TypeError, ValueError):  # decode() checked the types; belt and braces
            return "bad mac"
        return None if hmac.compare_digest(want, mac) else "bad mac"


class ReplayWindow:
    """The message counters seen of one run of a sender: a counter is
    accepted once, whether it is the highest yet or one of the last
    `_WINDOW` below it that has not come yet (messages of one sender may
    overtake each other a little)."""

    __slots__ = ("top", "bits")

    def __init__(self) -> None:
        self.top = 0
        self.bits = 0  # bit i: top - i was seen

    def accept(self, seq: int) -> bool:
        """Record ``seq``; False if it was seen before or is too old."""
        if seq > self.top:
            shift = seq - self.top
            self.bits = ((self.bits << shift) | 1) & ((1 << _WINDOW) - 1) if shift < _WINDOW else 1
            self.top = seq
            return True
        back = self.top - seq
        if back >= _WINDOW or self.bits >> back & 1:
            return False
        self.bits |= 1 << back
        return True


@dataclasses.dataclass
class _Run:
    """What we know of one run (instance) of a sender."""

    node: str
    window: ReplayWindow = dataclasses.field(default_factory=ReplayWindow)
    heard_seq: int = 0  # newest counter heard (to acknowledge it)
    heard_at: float = 0.0  # monotonic


class Channel:
    """This runner's end of the group channel (see the module doc).

    ``topic``: the group's topic; ``name``/``instance``: this runner;
    ``keys``: `GroupKeys`; ``timeout``: how recent an acknowledged message
    must be for a heartbeat to count as fresh.
    """

    def __init__(self, topic: Iterable[str], name: str, instance: str, keys: GroupKeys, timeout: float) -> None:
        self.topic = tuple(topic)
        self.name = name
        self.instance = instance
        self.keys = keys
        self.timeout = timeout
        self._seq = 0
        self._sent: collections.deque[tuple[int, float]] = collections.deque()  # (seq, monotonic) in order
        self._runs: collections.OrderedDict[str, _Run] = collections.OrderedDict()
        #: dropped messages by reason, since the start
        self.dropped: collections.Counter[str] = collections.Counter()
        self._unlogged: collections.Counter[str] = collections.Counter()
        self._last_reason = ""
        self._logged_at = 0.0

    # --- sending ---

    def outgoing(self, kind: Kind, **fields: Any) -> dict[str, Any]:
        """The next message of ``kind`` from us, on the wire: numbered, with
        our acknowledgements (heartbeats) and the MAC (with a key)."""
        self._seq += 1
        now = time.monotonic()
        self._sent.append((self._seq, now))
        while self._sent and now - self._sent[0][1] > self.timeout * 2:
            self._sent.popleft()
        if kind == "hb":
            fields["acks"] = self._acks(now)
        msg = Message(kind, self.name, self.instance, self._seq, **fields)
        return self.keys.seal(self.topic, encode(msg))

    def _acks(self, now: float) -> dict[str, int]:
        recent = [
            (r.heard_at, inst, r.heard_seq)
            for inst, r in self._runs.items()
            if r.heard_seq and now - r.heard_at < self.timeout
        ]
        recent.sort(reverse=True)
        return {inst: seq for _, inst, seq in recent[:MAX_ACKS]}

    def sent_at(self, seq: int) -> float | None:
        """When (monotonic) we sent message ``seq``, if recently."""
        for s, t in reversed(self._sent):
            if s == seq:
                return t
            if s < seq:
                break
        return None

    # --- receiving ---

    def receive(self, msg: Any) -> Message | None:
        """`incoming` for one message as DistKV's raw monitor gives it
        (``msg_monitor(raw=True)``: unpacked here, see `_wire.unpack`)."""
        try:
            data = unpack(msg.get("raw") if hasattr(msg, "get") else None)
        except Malformed as exc:
            self.drop("malformed", str(exc), None)
            return None
        return self.incoming(data)

    def incoming(self, data: object) -> Message | None:
        """The checked `Message` in received ``data``, or None (dropped,
        counted and logged) if it is malformed, has no valid MAC, or is a
        replay.  Never raises."""
        try:
            msg = decode(data)
        except Malformed as exc:
            self.drop("malformed", f"{exc}", data)
            return None
        except Exception as exc:  # decode() raises Malformed only; this must never crash a runner
            self.drop("malformed", f"{exc!r}", data)
            return None
        if not isinstance(data, Mapping):  # decode() made sure; for the type checker
            return None
        bad = self.keys.check(self.topic, data)
        if bad is not None:
            self.drop(bad.replace(" ", "-"), bad, data)
            return None
        if not self.keys.keyed and ("mac" in data or "kid" in data) and msg.instance != self.instance:
            # a runner with a key in a group we joined without one: say so
            # (taken all the same: it does not hear us, but we hear it)
            self.drop("mixed-keys", "sent with a group key, and this runner has none", data, taken=True)
        run = self._runs.get(msg.instance)
        if run is None:
            run = self._runs[msg.instance] = _Run(msg.node)
            while len(self._runs) > _MAX_RUNS:
                self._runs.popitem(last=False)
        else:
            self._runs.move_to_end(msg.instance)
        if self.keys.keyed:
            # Only with a key do counters mean anything: without one, a
            # forged message with a huge counter under a real run id would
            # make every later message of that run look like a replay.
            if run.node != msg.node:
                self.drop("malformed", f"run {msg.instance} of {run.node} now calls itself {msg.node}", data)
                return None
            if not run.window.accept(msg.seq):
                self.drop("replay", f"message {msg.seq} of {msg.node} (run {msg.instance}) again", data)
                return None
        elif run.node != msg.node:
            run.node, run.heard_seq = msg.node, 0
        if msg.instance != self.instance and msg.seq >= run.heard_seq:
            run.heard_seq, run.heard_at = msg.seq, time.monotonic()
        return msg

    def fresh(self, msg: Message) -> bool:
        """Does heartbeat ``msg`` acknowledge a message we sent less than
        ``timeout`` ago (so it was made after that, not replayed)?"""
        seq = msg.acks.get(self.instance)
        if seq is None:
            return False
        t = self.sent_at(seq)
        return t is not None and time.monotonic() - t < self.timeout

    # --- dropped messages ---

    def drop(self, reason: str, detail: str, data: object = None, *, taken: bool = False) -> None:
        """Count a dropped message (and log it, rate-limited, see `log_drops`);
        ``taken``: not dropped, only worth a warning."""
        if not taken:
            self.dropped[reason] += 1
        self._unlogged[reason] += 1
        node = data.get("node") if isinstance(data, Mapping) else None
        who = f" from {node!r}"[:60] if isinstance(node, str) else ""
        self._last_reason = f"{reason}{who}: {detail}"[:200]
        self.log_drops()

    def log_drops(self, force: bool = False) -> None:
        """Log the messages dropped since the last line, at most once per
        `LOG_EVERY` seconds (``force``: now, if there are any)."""
        now = time.monotonic()
        if not self._unlogged or (not force and now - self._logged_at < LOG_EVERY):
            return
        self._logged_at = now
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self._unlogged.items()))
        logger.warning("%s: group messages not believed: %s; latest: %s", self.name, counts, self._last_reason)
        self._unlogged.clear()
