"""The group channel's messages: their form on the wire, checked field by field.

Runners of a group talk over DistKV's message channel (``msg_send`` /
``msg_monitor``), which anybody connected to a DistKV server or to the
MQTT broker can write to.  So every message that arrives is checked here
before anything believes it: `decode` turns a received mapping into a
`Message` or raises `Malformed` naming the first thing wrong.  Nothing
that arrives can raise anything else.

On the wire (a mapping, msgpack'd by DistKV; old field names kept)::

    v: 1                    version of this format
    node: NAME              sender's name in the group (1..128 printable chars)
    i: INSTANCE             sender's run: 8..64 hex digits, new at each start
    q: SEQ                  sender's message counter in this run (1 .. 2**53)
    and one of:
      heartbeat   s: since (Unix time the sender started: its clock, for
                  display), u: its age (seconds since it started, by its
                  monotonic clock: what a name clash compares; optional,
                  0 .. MAX_AGE), w: weight
                  (0 .. MAX_WEIGHT), n: jobs running (0 .. 10**9),
                  t: the sender's own clock when sent (only it reads it),
                  a: {INSTANCE: SEQ} newest message heard from each run
                  of the group in the last timeout (at most MAX_ACKS),
                  g: [TAG, ...] the sender's tags (optional, only where it
                  has any; at most MAX_TAGS, each as `whenchecks.tag`
                  allows: ``relay``, ``room=kitchen``)
      leave: true           the sender stops; the others take over at once
      claim: [JOB, ...]     "I want to start these jobs"
      held:  [JOB, ...]     "I run these jobs" (at most MAX_JOBS names,
                            each 1..MAX_JOB characters, any characters)
    kid, mac                with a group key (`_groupauth`): which key
                            (4 bytes) and the MAC (32 bytes) over the rest

Every number is finite and in range; an unknown field, a field of the
wrong type, two kinds in one message: `Malformed`.
"""

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgpack

from distkv_ext.codekit.core.errors import InputRefused
from distkv_ext.codekit.core.whenchecks import tag

__all__ = [
    "Kind",
    "Message",
    "Malformed",
    "decode",
    "unpack",
    "encode",
    "VERSION",
    "MAX_NAME",
    "MAX_JOB",
    "MAX_JOBS",
    "MAX_ACKS",
    "MAX_WEIGHT",
    "MAX_SEQ",
    "MAX_TAGS",
    "chunks",
    "kind_of",
]

#: The format version this runner speaks.
VERSION = 1
#: Longest node name (characters).
MAX_NAME = 128
#: Longest job name (characters).
MAX_JOB = 4096
#: Most job names in one claim or held message (senders split longer lists).
MAX_JOBS = 1000
#: Most characters of job names that a sender puts in one claim or held
#: message (1,000 names of `MAX_JOB` would make 4 MB, a burden on the
#: server and the broker; 1,000 names of 10 characters make ~12 KB).
BATCH_CHARS = 16_000
#: Most acknowledged runs in one heartbeat.
MAX_ACKS = 64
#: Largest weight a node may have (``runner.weight`` is checked against it too).
MAX_WEIGHT = 1e6
#: Most tags in one heartbeat (``runner.tags`` allows no more).
MAX_TAGS = 64
#: Largest message counter.
MAX_SEQ = 2**53
#: Largest message on the wire (bytes); bigger ones are not even unpacked.
MAX_PAYLOAD = 5 * 2**20
_MAX_LOAD = 10**9
_MAX_SINCE = 1e11  # Unix time, year 5138
#: Largest age (seconds a runner has run) a heartbeat may give: 1000 years.
MAX_AGE = 3.2e10
_MAX_CLOCK = 1e13

#: What a message says: heartbeat, leave, claim or held.
Kind = Literal["hb", "leave", "claim", "held"]

_INSTANCE = re.compile(r"[0-9a-f]{8,64}")
_COMMON = {"v", "node", "i", "q", "kid", "mac"}
_FIELDS: dict[str, set[str]] = {
    "hb": _COMMON | {"s", "u", "w", "n", "t", "a", "g"},
    "leave": _COMMON | {"leave"},
    "claim": _COMMON | {"claim"},
    "held": _COMMON | {"held"},
}


class Malformed(ValueError):
    """A received message is not one of ours, or a field is wrong; the
    message says which (one line, for the log)."""


@dataclasses.dataclass(frozen=True)
class Message:
    """A checked message of the group channel (see the module doc)."""

    kind: Kind
    node: str
    instance: str
    seq: int
    since: float = 0.0
    age: float | None = None  # heartbeats: None from a runner that does not send it
    weight: float = 0.0
    load: int = 0
    sent: float = 0.0
    acks: Mapping[str, int] = dataclasses.field(default_factory=dict)
    jobs: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # heartbeats: the sender's tags (see `_placement`)


def encode(msg: Message) -> dict[str, Any]:
    """The wire form of ``msg`` (without ``kid``/``mac``: `_groupauth` adds them)."""
    res: dict[str, Any] = {"v": VERSION, "node": msg.node, "i": msg.instance, "q": msg.seq}
    if msg.kind == "hb":
        res.update(s=msg.since, w=msg.weight, n=msg.load, t=msg.sent, a=dict(msg.acks))
        if msg.age is not None:
            res["u"] = msg.age
        if msg.tags:
            res["g"] = list(msg.tags)
    elif msg.kind == "leave":
        res["leave"] = True
    else:
        res[msg.kind] = list(msg.jobs)
    return res


def unpack(payload: object) -> object:
    """The value in a raw message (msgpack bytes, as ``msg_monitor(...,
    raw=True)`` delivers it); `Malformed` if it is too large or no msgpack.

    Plain msgpack, without DistKV's extension types: our messages hold
    none, and a received message must not make objects.  (Runners read
    the channel raw because DistKV 0.65's server ends every subscription
    of a topic when a message that is no msgpack arrives on it.)"""
    if not isinstance(payload, (bytes, bytearray)):
        raise Malformed(f"not a message: {type(payload).__name__}")
    if len(payload) > MAX_PAYLOAD:
        raise Malformed(f"{len(payload)} bytes, more than {MAX_PAYLOAD}")
    try:
        return msgpack.unpackb(payload, raw=False, use_list=False, strict_map_key=False)
    except Exception as exc:  # msgpack's errors have no useful common base
        raise Malformed(f"not msgpack: {type(exc).__name__}") from None


def kind_of(data: Mapping[Any, Any]) -> Kind:
    """Which kind of message ``data`` is; `Malformed` if it names none or
    more than one."""
    kinds = [k for k in ("leave", "claim", "held") if k in data]
    if len(kinds) > 1:
        raise Malformed(f"more than one kind of message: {kinds}")
    return kinds[0] if kinds else "hb"  # type: ignore[return-value]  # a literal of Kind


def decode(data: object) -> Message:
    """The `Message` in ``data`` (a received mapping); `Malformed` if it is
    not a well-formed message of this format (see the module doc)."""
    if not isinstance(data, Mapping):
        raise Malformed(f"not a mapping but {type(data).__name__}")
    if len(data) > 16:
        raise Malformed("too many fields")
    for k in data:
        if not isinstance(k, str):
            raise Malformed(f"field name {_show(k)} is no text")
    if "v" not in data:
        raise Malformed("no version (an older runner, or not ours)")
    if data["v"] != VERSION or isinstance(data["v"], bool):
        raise Malformed(f"version {_show(data['v'])}, not {VERSION}")
    kind = kind_of(data)
    unknown = set(data) - _FIELDS[kind]
    if unknown:
        raise Malformed(f"unknown field {_show(sorted(unknown)[0])}")
    node = _name(data.get("node"), "node", MAX_NAME)
    instance = _instance(data.get("i"), "i")
    seq = _int(data.get("q"), "q", 1, MAX_SEQ)
    if kind == "hb":
        acks = data.get("a")
        if not isinstance(acks, Mapping) or len(acks) > MAX_ACKS:
            raise Malformed(f"a: not a mapping of at most {MAX_ACKS} acknowledgements")
        return Message(
            "hb",
            node,
            instance,
            seq,
            since=_number(data.get("s"), "s", 0.0, _MAX_SINCE),
            age=None if data.get("u") is None else _number(data["u"], "u", 0.0, MAX_AGE),
            weight=_number(data.get("w"), "w", 0.0, MAX_WEIGHT),
            load=_int(data.get("n"), "n", 0, _MAX_LOAD),
            sent=_number(data.get("t"), "t", -_MAX_CLOCK, _MAX_CLOCK),
            acks={_instance(k, "a"): _int(v, "a", 1, MAX_SEQ) for k, v in acks.items()},
            tags=_tags(data.get("g", ())),
        )
    if kind == "leave":
        if data["leave"] is not True:
            raise Malformed(f"leave: {_show(data['leave'])}, not true")
        return Message("leave", node, instance, seq)
    return Message(kind, node, instance, seq, jobs=_jobs(data[kind], kind))


def _show(x: object) -> str:
    """A short description of a received value, for the log (never all of it)."""
    r = repr(x)
    return r if len(r) <= 40 else r[:37] + "..."


def _name(x: object, field: str, limit: int, printable: bool = True) -> str:
    if not isinstance(x, str) or not 0 < len(x) <= limit or (printable and not x.isprintable()):
        what = "printable characters" if printable else "characters"
        raise Malformed(f"{field}: {_show(x)} is not 1..{limit} {what}")
    return x


def _instance(x: object, field: str) -> str:
    if not isinstance(x, str) or not _INSTANCE.fullmatch(x):
        raise Malformed(f"{field}: {_show(x)} is not a run id (8..64 hex digits)")
    return x


def _int(x: object, field: str, lo: int, hi: int) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
        raise Malformed(f"{field}: {_show(x)} is not a whole number in {lo}..{hi}")
    return x


def _number(x: object, field: str, lo: float, hi: float) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or not lo <= x <= hi:
        raise Malformed(f"{field}: {_show(x)} is not a finite number in {lo:g}..{hi:g}")
    return float(x)


def _jobs(x: object, field: str) -> tuple[str, ...]:
    if not isinstance(x, (list, tuple)) or len(x) > MAX_JOBS:
        raise Malformed(f"{field}: not a list of at most {MAX_JOBS} job names")
    return tuple(_name(j, field, MAX_JOB, printable=False) for j in x)  # paths may hold any character


def _tags(x: object) -> tuple[str, ...]:
    if not isinstance(x, (list, tuple)) or len(x) > MAX_TAGS:
        raise Malformed(f"g: not a list of at most {MAX_TAGS} tags")
    res = []
    for t in x:
        try:
            res.append(tag(t))
        except InputRefused:
            raise Malformed(f"g: {_show(t)} is no tag") from None
    return tuple(res)


def chunks(jobs: Iterable[str], size: int = MAX_JOBS, chars: int = BATCH_CHARS) -> Iterable[tuple[str, ...]]:
    """``jobs`` in groups of at most ``size`` names of at most ``chars``
    characters together (a single longer name goes alone): for claim and
    held messages, which stay small however many jobs are due at once."""
    batch: list[str] = []
    n = 0
    for j in jobs:
        if batch and (len(batch) >= size or n + len(j) > chars):
            yield tuple(batch)
            batch, n = [], 0
        batch.append(j)
        n += len(j)
    if batch:
        yield tuple(batch)
