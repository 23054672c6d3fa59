"""The group channel's messages, checked field by field, with and without a key.

Unit tests of `run._wire` (decoding) and `run._groupauth` (MAC, replay
window, freshness, rotation); the same messages against real runner
daemons are in test_group_forgery.py.
"""

import math
import time

import pytest

from distkv_ext.codekit.core.errors import BadKeyFile
from distkv_ext.run._groupauth import Channel, GroupKeys, ReplayWindow, new_group_key
from distkv_ext.run._wire import MAX_ACKS, MAX_JOBS, MAX_PAYLOAD, MAX_TAGS, Malformed, decode, unpack

TOPIC = ("distkv_code", "run", "any", "g")
K1, K2 = b"1" * 32, b"2" * 32


def hb(**kw):
    msg = {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "s": 1.0, "w": 1.0, "n": 0, "t": 5.0, "a": {}}
    msg.update(kw)
    return {k: v for k, v in msg.items() if v is not ...}


GOOD = [
    hb(),
    hb(w=0, n=10**9, s=0, t=-1e6),
    hb(u=0),
    hb(u=86400.5),
    hb(g=["relay", "room=kitchen", "x" * 64 + "=" + "y" * 64]),
    hb(g=[f"t{i}" for i in range(MAX_TAGS)]),
    hb(g=()),
    {"v": 1, "node": "n1", "i": "a" * 12, "q": 7, "leave": True},
    {"v": 1, "node": "n1", "i": "a" * 12, "q": 7, "claim": ["a.b", "x" * 4096, "odd\nname"]},
    {"v": 1, "node": "n1", "i": "a" * 12, "q": 7, "held": ()},
]

BAD = {
    "not a mapping": [1, 2],
    "no version (old format)": {"node": "n1", "w": 1.0},
    "other version": hb(v=2),
    "bool version": hb(v=True),
    "unknown field": hb(x=1),
    "field name no text": {**hb(), 1: 2},
    "two kinds": {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "claim": [], "held": []},
    "heartbeat field in a claim": {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "claim": [], "w": 1.0},
    "weight inf": hb(w=math.inf),
    "weight nan": hb(w=math.nan),
    "weight 1e9": hb(w=1e9),
    "weight negative": hb(w=-1.0),
    "weight text": hb(w="1"),
    "weight bool": hb(w=True),
    "weight missing": hb(w=...),
    "load float": hb(n=1.5),
    "load negative": hb(n=-1),
    "load huge": hb(n=10**12),
    "since nan": hb(s=math.nan),
    "since a dict": hb(s={"x": 1}),
    "since far future": hb(s=1e300),
    "clock inf": hb(t=math.inf),
    "age negative": hb(u=-1.0),
    "age nan": hb(u=math.nan),
    "age text": hb(u="1"),
    "age bool": hb(u=True),
    "age 1e40": hb(u=1e40),
    "node empty": hb(node=""),
    "node not text": hb(node=42),
    "node too long": hb(node="n" * 129),
    "node control chars": hb(node="n1\n"),
    "run id not hex": hb(i="zzzzzzzzzzzz"),
    "run id short": hb(i="abc"),
    "run id a list": hb(i=["a"]),
    "seq zero": hb(q=0),
    "seq negative": hb(q=-5),
    "seq huge": hb(q=2**60),
    "seq float": hb(q=1.0),
    "seq missing": hb(q=...),
    "acks not a mapping": hb(a=[1]),
    "acks too many": hb(a={f"{i:012x}": 1 for i in range(MAX_ACKS + 1)}),
    "ack bad run id": hb(a={"x": 1}),
    "ack bad seq": hb(a={"b" * 12: "1"}),
    "leave false": {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "leave": False},
    "leave text": {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "leave": "yes"},
    "claim text": {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "claim": "job"},
    "claim of numbers": {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "claim": [1, 2]},
    "claim empty name": {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "claim": [""]},
    "claim too long name": {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "claim": ["x" * 4097]},
    "claim too many": {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "held": ["j"] * (MAX_JOBS + 1)},
    "too many fields": {**hb(), **{f"x{i}": i for i in range(20)}},
    "tags not a list": hb(g="relay"),
    "tags a mapping": hb(g={"relay": 1}),
    "tags too many": hb(g=[f"t{i}" for i in range(MAX_TAGS + 1)]),
    "tags huge list": hb(g=["relay"] * 100_000),
    "tag too long": hb(g=["x" * 65]),
    "tag value too long": hb(g=["room=" + "y" * 65]),
    "tag not text": hb(g=[1]),
    "tag bytes": hb(g=[b"relay"]),
    "tag empty": hb(g=[""]),
    "tag with a space": hb(g=["a b"]),
    "tag with a newline": hb(g=["relay\n"]),
    "tags in a claim": {"v": 1, "node": "n1", "i": "a" * 12, "q": 1, "claim": [], "g": ["relay"]},
}


@pytest.mark.parametrize("data", GOOD)
def test_good_messages_decode(data):
    decode(data)


def test_tags_go_both_ways_and_only_when_there_are_any():
    a, b = pair(K1, K1)
    plain = beat(a)
    assert "g" not in plain  # a runner without tags sends none
    msg = b.incoming(a.outgoing("hb", since=1.0, weight=1.0, load=0, sent=1.0, tags=("relay", "room=kitchen")))
    assert msg is not None and msg.tags == ("relay", "room=kitchen")
    forged = dict(a.outgoing("hb", since=1.0, weight=1.0, load=0, sent=1.0, tags=("relay",)), g=["relay", "admin"])
    assert b.incoming(forged) is None and b.dropped["bad-mac"] == 1  # the MAC covers the tags


@pytest.mark.parametrize("what", sorted(BAD))
def test_malformed_messages_are_refused(what):
    with pytest.raises(Malformed):
        decode(BAD[what])


@pytest.mark.parametrize("what", sorted(BAD))
def test_a_channel_drops_malformed_messages_and_never_raises(what):
    ch = Channel(TOPIC, "me", "f" * 12, GroupKeys(), 2.0)
    assert ch.incoming(BAD[what]) is None
    assert ch.dropped["malformed"] == 1


def pair(k_a=None, k_b=None, other_a=None, other_b=None):
    a = Channel(TOPIC, "a", "a" * 12, GroupKeys(k_a, other_a), 2.0)
    b = Channel(TOPIC, "b", "b" * 12, GroupKeys(k_b, other_b), 2.0)
    return a, b


def beat(ch):
    return ch.outgoing("hb", since=1.0, weight=1.0, load=0, sent=time.monotonic())


def test_with_a_key_only_messages_with_its_mac_pass():
    a, b = pair(K1, K1)
    m = beat(a)
    assert b.incoming(m) is not None
    forged = dict(beat(a), w=5.0)  # changed after the MAC was made
    assert b.incoming(forged) is None and b.dropped["bad-mac"] == 1
    plain = {k: v for k, v in beat(a).items() if k not in ("mac", "kid")}
    assert b.incoming(plain) is None and b.dropped["no-mac"] == 1
    c = Channel(TOPIC, "c", "c" * 12, GroupKeys(K2), 2.0)
    assert b.incoming(beat(c)) is None and b.dropped["unknown-key"] == 1
    other_topic = Channel(("distkv_code", "run", "any", "h"), "a", "d" * 12, GroupKeys(K1), 2.0)
    assert b.incoming(beat(other_topic)) is None and b.dropped["bad-mac"] == 2  # no replay into another group


def test_replays_are_dropped_and_reordering_is_not():
    a, b = pair(K1, K1)
    msgs = [beat(a) for _ in range(5)]
    assert b.incoming(msgs[0]) and b.incoming(msgs[2])
    assert b.incoming(msgs[1]) is not None  # overtaken a little: fine
    assert b.incoming(msgs[2]) is None and b.dropped["replay"] == 1
    assert all(b.incoming(m) is not None for m in msgs[3:])
    assert all(b.incoming(m) is None for m in msgs)  # every one again: replays
    w = ReplayWindow()
    assert w.accept(1000) and not w.accept(1000 - 200) and w.accept(999) and not w.accept(999)


def test_a_heartbeat_is_fresh_only_when_it_acknowledges_our_recent_message():
    a, b = pair(K1, K1)
    first = b.incoming(beat(a))
    assert not b.fresh(first)  # a has not heard b yet
    a.incoming(beat(b))
    recorded = beat(a)  # acknowledges b's message
    assert b.fresh(b.incoming(recorded))
    # replayed to b's next run (or to anyone, later): it acknowledges nothing recent
    b2 = Channel(TOPIC, "b", "e" * 12, GroupKeys(K1), 2.0)
    msg = b2.incoming(recorded)
    assert msg is not None and not b2.fresh(msg)


def test_rotation_accepts_both_keys_and_sends_with_the_first():
    old, new = pair(K1, K2, other_b=K1)  # b already knows the new key, sends with it
    assert new.incoming(beat(old)) is not None  # b accepts a's old key
    assert old.incoming(beat(new)) is None  # a does not know K2 yet
    mid = Channel(TOPIC, "m", "9" * 12, GroupKeys(K1, K2), 2.0)
    assert mid.incoming(beat(new)) is not None and mid.incoming(beat(old)) is not None
    assert GroupKeys(K1, K2).describe().startswith("hmac-sha256 key ")


def test_without_a_key_everything_well_formed_passes_and_the_group_says_so():
    a, b = pair()
    assert not b.keys.keyed and b.keys.describe() == "unauthenticated"
    m = beat(a)
    assert b.incoming(m) is not None
    # counters mean nothing without a key: a forged huge one must not make
    # the real messages that follow look like replays
    assert b.incoming(dict(m, q=10**12)) is not None
    assert b.incoming(beat(a)) is not None
    keyed = Channel(TOPIC, "k", "7" * 12, GroupKeys(K1), 2.0)
    assert b.incoming(beat(keyed)) is not None  # taken, but warned about (a mixed group)
    assert b.dropped["mixed-keys"] == 0


def test_key_files(tmp_path):
    fn = str(tmp_path / "g.key")
    kid = new_group_key(fn)
    keys = GroupKeys.load(fn)
    with open(fn) as f:
        secret = f.read().strip()
    assert keys.keyed and keys.key_ids == [kid] and secret not in repr(keys)
    short = tmp_path / "short.key"
    short.write_text("c2hvcnQ=\n")  # 5 bytes
    with pytest.raises(BadKeyFile, match=r"runner.group_key: the key in .* has 5 bytes, it needs at least 32"):
        GroupKeys.load(str(short))
    with pytest.raises(BadKeyFile, match="cannot read"):
        GroupKeys.load(str(tmp_path / "missing"))
    with pytest.raises(BadKeyFile, match="group_key_next needs"):
        GroupKeys.load(None, fn)
    # openssl rand -base64 48 wraps at 64 characters: two lines
    wrapped = tmp_path / "wrapped.key"
    wrapped.write_text("# made with openssl\n" + "QUFB" * 16 + "\n" + "QUFB" * 4 + "\n")
    assert GroupKeys.load(str(wrapped)).keyed


@pytest.mark.parametrize(
    "payload",
    [b"\xc1\xff\x00garbage", b"", b"\x92\x01", "text", None, b"\xc7\x01\x05x", b"\x00" * (MAX_PAYLOAD + 1)],
    ids=["never-used byte", "empty", "truncated", "not bytes", "none", "an extension type", "too large"],
)
def test_raw_payloads_that_are_no_message(payload):
    try:
        value = unpack(payload)
    except Malformed:
        return
    with pytest.raises(Malformed):  # an extension type unpacks to an ExtType, which no field accepts
        decode(value)


def test_claims_go_out_in_batches_of_bounded_count_and_size():
    from distkv_ext.run._wire import BATCH_CHARS, chunks

    short = [f"j{i}" for i in range(2500)]
    assert [len(b) for b in chunks(short)] == [MAX_JOBS, MAX_JOBS, 500]
    long = ["x" * 3990 + str(i) for i in range(10)]  # 3,991 characters each
    batches = list(chunks(long))
    assert [len(b) for b in batches] == [4, 4, 2]  # ~16,000 characters each at most
    assert all(sum(map(len, b)) <= BATCH_CHARS for b in batches)
    assert [len(b) for b in chunks(["y" * (BATCH_CHARS + 1), "z"])] == [1, 1]  # a longer name goes alone
    assert [j for b in chunks(long) for j in b] == long
