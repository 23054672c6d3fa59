"""Pins that mean it: a typed canonical encoding, SHA-256, modules included.

`canon.canonical` tells types apart that ``json.dumps(default=str)``
confused (a Path and its text, bytes and text, 1 and 1.0 and True);
`digest.pin_hash` covers the procedure and every stored module it needs,
transitively; a runner refuses a pinned job whose procedure or module
changed, and still honours the 16-digit pins of earlier releases.
"""

import pytest
from moat.util import P

from distkv_ext.codekit.core.canon import canonical
from distkv_ext.codekit.core.digest import (
    content_hash,
    legacy_hash,
    needed_modules,
    pin_hash,
    pin_matches,
)
from distkv_ext.run import AnyRunnerRoot
from tests.helpers import wait_for
from tests.test_run_lib import FAST, add_job


@pytest.mark.parametrize(
    "a, b",
    [
        (P("a.b"), "a.b"),  # a Path is not its text
        (P("a.b"), ["a", "b"]),  # nor the list of its elements
        (b"x", "x"),  # bytes are not text
        (1, 1.0),
        (1, True),
        (0, False),
        (None, ""),
        ({"a": 1}, [("a", 1)]),
        ("", b""),
        ([], {}),
    ],
)
def test_the_encoding_tells_types_apart(a, b):
    assert canonical(a) != canonical(b)


def test_the_encoding_is_stable():
    assert canonical({"b": 1, "a": [1, 2]}) == canonical({"a": (1, 2), "b": 1})  # lists come back as tuples
    assert canonical(P("a.b")) == canonical(P("a.b"))
    with pytest.raises(TypeError):
        canonical({1, 2})
    deep = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError):
        canonical(deep)


def test_the_old_hash_confused_a_path_with_its_text_the_new_one_does_not():
    as_path = {"code": "return x", "default": {"x": P("a.b")}}
    as_text = {"code": "return x", "default": {"x": "a.b"}}
    assert legacy_hash(as_path) == legacy_hash(as_text)  # why pins needed redoing
    assert content_hash(as_path, "proc") != content_hash(as_text, "proc")
    assert pin_hash(as_path, {}.get) != pin_hash(as_text, {}.get)
    assert len(pin_hash(as_path, {}.get)) == 64


def test_info_and_signature_do_not_count():
    v = {"code": "return 1", "is_async": None, "vars": []}
    assert content_hash(v, "proc") == content_hash(dict(v, info="x", sig={"alg": "ed25519"}), "proc")
    assert pin_hash(v, {}.get) == pin_hash(dict(v, info="other"), {}.get)
    assert content_hash(dict(v, is_async=False), "proc") != content_hash(v, "proc")  # thread, not sync


MODS = {
    "util": {"code": "X = 1\n", "requires": []},
    "util.pid": {"code": "import util.helper\n", "requires": ["util"]},
    "util.helper": {"code": "Y = 2\n", "requires": []},
    "other": {"code": "Z = 3\n", "requires": []},
}


def test_the_pin_covers_the_modules_needed_transitively():
    proc = {"code": "import util.pid\nreturn 1", "requires": []}
    assert sorted(needed_modules(proc, MODS.get)) == ["util", "util.helper", "util.pid"]
    pin = pin_hash(proc, MODS.get)
    for name in ("util", "util.pid", "util.helper"):
        changed = dict(MODS, **{name: dict(MODS[name], code=MODS[name]["code"] + "# changed\n")})
        assert pin_hash(proc, changed.get) != pin, f"a change of {name} must change the pin"
    unrelated = dict(MODS, other={"code": "Z = 4\n"})
    assert pin_hash(proc, unrelated.get) == pin
    # a required module that is not stored counts as missing; storing it changes the pin
    needs = {"code": "return 1", "requires": ["util.gone"]}
    assert needed_modules(needs, MODS.get) == {"util.gone": None, "util": MODS["util"]}
    assert pin_hash(needs, MODS.get) != pin_hash(needs, dict(MODS, **{"util.gone": {"code": ""}}).get)


def test_old_pins_are_honoured():
    proc = {"code": "return 1", "is_async": None, "vars": [], "requires": []}
    old = legacy_hash(proc)
    assert len(old) == 16 and pin_matches(old, proc, {}.get)
    assert not pin_matches(old, dict(proc, code="return 2"), {}.get)
    assert pin_matches(pin_hash(proc, {}.get), proc, {}.get)
    assert not pin_matches(None, proc, {}.get) and not pin_matches(42, proc, {}.get)


async def test_a_runner_refuses_a_pinned_job_whose_module_changed(autojump_clock, client, cr):
    mods = await cr.load_modules()  # (modules load on demand)
    await mods.add("pinmod", code="VALUE = 1\n")
    await cr.add("pinproc", code="import pinmod\nreturn pinmod.VALUE")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    pin = pin_hash(cr.lookup("pinproc").value, mods.value_of)
    job = await add_job(r, "pm", "pinproc", pin=pin, repeat=1, delay=1)
    await wait_for(lambda: job.state.result == 1)
    await mods.add("pinmod", code="VALUE = 2\n")
    await wait_for(lambda: job.state.error is not None)
    assert "changed since the job was pinned" in job.state.error
    assert job.state.result == 1  # the changed module never ran


async def test_a_runner_still_honours_an_old_pin(autojump_clock, client, cr):
    await cr.add("oldpin", code="return 5")
    r = await AnyRunnerRoot.as_handler(client, subpath=("any", "g"), code=cr, node="n1", cfg=FAST)
    job = await add_job(r, "op", "oldpin", pin=legacy_hash(cr.lookup("oldpin").value), repeat=1, delay=1)
    await wait_for(lambda: job.state.result == 5)
    await cr.add("oldpin", code="return 6")
    await wait_for(lambda: job.state.error is not None)
    assert job.state.error.startswith("the procedure changed since the job was pinned")
