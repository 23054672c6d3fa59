"""Forged and malformed group messages, for the tests that send them to
runners (in-process: test_group_forgery.py; real daemons: the drill).

`forgeries(seen)` builds them from what an attacker on the channel has
heard (`Heard`): the members' names, run ids and counters, and recorded
messages to replay.  Each is ``(name, payload)``; a payload of bytes is
sent raw (not msgpack).  ``naive`` forgeries know nothing of the group;
``smart`` ones copy live members' run ids and acknowledge their counters,
as an attacker who reads the channel can: without a group key nothing
tells them from the real thing.
"""

import math

GHOST = "ghost"


class Heard:
    """What an attacker listening on the group's topic learned."""

    def __init__(self):
        self.members = {}  # node -> (run id, newest counter, since)
        self.recorded = []  # raw messages, in order

    def add(self, data):
        if not isinstance(data, dict):
            return
        self.recorded.append(data)
        node, run, seq = data.get("node"), data.get("i"), data.get("q")
        if isinstance(node, str) and isinstance(run, str) and isinstance(seq, int):
            since = data.get("s", self.members.get(node, (None, 0, 0.0))[2])
            self.members[node] = (run, seq, since)

    def acks(self):
        """Acknowledgements of every member's newest message."""
        return {run: seq for run, seq, _ in self.members.values()}


def hb(node, run="ab" * 6, seq=1, **kw):
    msg = {"v": 1, "node": node, "i": run, "q": seq, "s": 1.0, "w": 1.0, "n": 0, "t": 1.0, "a": {}}
    msg.update(kw)
    return msg


def naive(victim):
    """Forgeries that need no knowledge of the group (the issue's list, and more)."""
    big = 10**9
    return [
        ("old format: ghost with weight inf", {"node": GHOST, "w": math.inf, "n": 0}),
        ("old format: ghost with weight nan", {"node": GHOST, "w": math.nan}),
        ("ghost with weight inf", hb(GHOST, w=math.inf)),
        ("ghost with weight nan", hb(GHOST, w=math.nan)),
        ("ghost with weight 1e9", hb(GHOST, w=1e9)),
        ("ghost with a negative weight", hb(GHOST, w=-1.0)),
        ("ghost, weight of the wrong type", hb(GHOST, w="heavy")),
        ("ghost, fields of the wrong types", hb(GHOST, s={"x": 1}, n="many", a=[1])),
        ("ghost heartbeat, well formed, acknowledging nobody", hb(GHOST, seq=big)),
        ("heartbeat under a real runner's name, older since", hb(victim, "cd" * 6, s=0.0)),
        ("old format: heartbeat under a real name, since a dict", {"node": victim, "i": "x", "s": {"a": 1}}),
        ("heartbeat under a real runner's name, w of the wrong type", hb(victim, w=[1])),
        ("held for every job from a non-member", {"v": 1, "node": GHOST, "i": "ef" * 6, "q": 1, "held": ["j0", "j1"]}),
        ("claim for every job from a non-member", {"v": 1, "node": GHOST, "i": "ef" * 6, "q": 2, "claim": ["j0"]}),
        ("old format: held from a real name", {"node": victim, "held": ["j0", "j1", "j2"]}),
        ("held and claim in one message", {"v": 1, "node": victim, "i": "ef" * 6, "q": 3, "held": [], "claim": []}),
        ("leave of a real runner, unknown run", {"v": 1, "node": victim, "i": "ef" * 6, "q": 4, "leave": True}),
        ("held with 100000 job names", {"v": 1, "node": GHOST, "i": "ef" * 6, "q": 5, "held": ["j"] * 100000}),
        ("held with a 1 MB job name", {"v": 1, "node": GHOST, "i": "ef" * 6, "q": 6, "held": ["j" * 2**20]}),
        ("node name of 10000 characters", hb("n" * 10000)),
        ("node name that is a number", hb(12345)),
        ("counter of 2**64-1", hb(GHOST, seq=2**64 - 1)),
        ("a list instead of a mapping", [1, 2, 3]),
        ("a string", "hello"),
        ("not msgpack (raw bytes)", b"\xc1\xff\x00garbage"),
        ("a mapping with 1000 fields", {f"k{i}": i for i in range(1000)}),
        ("deeply nested value", hb(GHOST, a=_nested(200))),
        ("version 2", dict(hb(GHOST), v=2)),
        ("MAC and key id of the wrong types", dict(hb(GHOST), kid="k", mac=12)),
        ("made-up MAC", dict(hb(GHOST), kid=b"\0\0\0\0", mac=b"\0" * 32)),
        ("ghost with tags of the wrong type", hb(GHOST, g="relay")),
        ("ghost with 100000 tags", hb(GHOST, g=["relay"] * 100000)),
        ("ghost with a 1 MB tag", hb(GHOST, g=["r" * 2**20])),
        ("ghost with nested tags", hb(GHOST, g=[["relay"]])),
        ("heartbeat under a real runner's name, tags of numbers", hb(victim, g=[1, 2])),
    ]


def _nested(n):
    x = {}
    for _ in range(n):
        x = {"a": x}
    return x


def smart(heard, victim):
    """Forgeries made from what was heard: replays, and well-formed
    messages under real names with real run ids and fresh acknowledgements."""
    res = []
    run, seq, since = heard.members.get(victim, ("ab" * 6, 1, 1.0))
    acks = heard.acks()
    res.append(("ghost heartbeat acknowledging every member", hb(GHOST, "0f" * 6, 1, a=acks)))
    res.append(
        ("heartbeat under a real name, older, acknowledging", hb(victim, "1e" * 6, 1, s=max(0.0, since - 1000), a=acks))
    )
    res.append(
        ("leave of a real runner, its run id", {"v": 1, "node": victim, "i": run, "q": seq + 1000, "leave": True})
    )
    res.append(
        (
            "held for every job under a real run id",
            {"v": 1, "node": victim, "i": run, "q": seq + 1001, "held": ["j0", "j1"]},
        )
    )
    for data in heard.recorded[-20:]:
        res.append((f"replay of a recorded {_kind(data)} of {data.get('node')}", data))
    return res


def _kind(data):
    for k in ("leave", "claim", "held"):
        if k in data:
            return k
    return "heartbeat"


async def send_all(client, topic, items):
    """Send every forgery; returns how many went out."""
    n = 0
    for _, payload in items:
        if isinstance(payload, bytes):
            await client.msg_send(topic, raw=payload)
        else:
            await client.msg_send(topic, payload)
        n += 1
    return n
