"""`ResyncRoot`: a mirror survives the server dropping its watch.

DistKV's server ends a watch whose client falls more than 100 changes
behind (servers of ours: 5,000, `upstream.distkv_flow`; a plain DistKV
server: 100, which these tests use).  Here the mirror's consumer is held
up on purpose while 300 changes (and a deletion) are written: the server
drops the watch, and the mirror must load the subtree again and end up
equal to the store.
"""

import anyio
import pytest
from distkv.model import Watcher
from distkv.obj import ClientEntry
from moat.util import P

from distkv_ext.codekit.store.lazy import LazyRoot
from distkv_ext.codekit.store.resync import ResyncRoot
from tests.helpers import wait_for

PREFIX = P(":.test.resync")


@pytest.fixture(autouse=True)
def distkvs_own_watch_queue(monkeypatch):
    """DistKV's queue per watch (100 changes), so that 300 overflow it."""
    monkeypatch.setattr(Watcher, "q_len", 100)


class GateEntry(ClientEntry):
    """Takes in a value only while its root's gate is open."""

    sets = 0

    async def set_value(self, value):
        await self.root.gate.wait()
        self.sets += 1
        await super().set_value(value)


class GatedRoot(ResyncRoot):
    @classmethod
    def child_type(cls, name):
        return GateEntry

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.gate = anyio.Event()
        self.gate.set()
        self.runs = 0

    async def running(self):
        self.runs += 1
        await super().running()


def mirrored(root):
    return {e._name: e.value for e in root.all_children}


async def stored(c):
    return {r.path[-1]: r.value async for r in c.get_tree(PREFIX) if "value" in r}


async def test_dropped_watch_is_loaded_again(autojump_clock, client):
    for i in range(5):
        await client.set(PREFIX + (f"k{i}",), value=i)
    await client.set(PREFIX | "gone", value="soon")
    await client.set(PREFIX | "still", value="unchanged")
    async with client.mirror(PREFIX, root_type=GatedRoot, need_wait=True) as root:
        await root.wait_loaded()
        assert mirrored(root) == await stored(client)

        root.gate = anyio.Event()  # the consumer stalls on the next change
        for n in range(300):
            await client.set(PREFIX + (f"k{n % 7}",), value=1000 + n)
        await client.delete(PREFIX | "gone")
        last = await client.set(PREFIX | "last", value="end", nchain=2)
        root.gate.set()

        async def caught_up():
            return mirrored(root) == await stored(client)

        with anyio.fail_after(30):
            await root.wait_chain(last.chain)
            await wait_for(caught_up, timeout=30, step=0.1, what="the mirror to equal the store")
        assert root.resyncs >= 1
        assert "gone" not in mirrored(root)
        assert root.runs == 1  # running() once, not per watch
        # an entry that did not change is not set again (a procedure
        # would be recompiled and its running jobs restarted)
        assert root.follow(P("still")).sets == 1

        # and the new watch is live
        await client.set(PREFIX | "after", value=1)
        await wait_for(lambda: mirrored(root).get("after") == 1, timeout=10, step=0.05, what="the new watch")


async def test_an_entry_the_fetch_left_out_is_asked_for_not_dropped(autojump_clock, client):
    """DistKV's fetch leaves out entries changed after the watch began (the
    watch reports those, maybe after "uptodate"): after a new watch, an
    entry that was not in the fetch is read from the server, and dropped
    only if the server has none.  Dropped at once, a job's entry changed
    in that moment looked deleted: its run stopped and its state went."""
    await client.set(PREFIX | "seen", value=1)
    await client.set(PREFIX | "changed", value=2)
    async with client.mirror(PREFIX, root_type=GatedRoot, need_wait=True) as root:
        await root.wait_loaded()
        ghost = root.follow(P("ghost"), create=True)  # in the mirror only: the store deleted it
        await ghost.set_value(3)
        assert mirrored(root) == {"seen": 1, "changed": 2, "ghost": 3}
        sets = root.follow(P("changed")).sets
        await root._drop_unseen({("seen",)})  # what a new watch's fetch that left out "changed" ends with
        await wait_for(lambda: "ghost" not in mirrored(root), timeout=10, what="the ghost, dropped")
        assert mirrored(root) == {"seen": 1, "changed": 2}
        assert root.follow(P("changed")).sets == sets  # left alone: its change comes through the watch


async def test_keeps_resyncing_past_the_limit_with_longer_pauses(autojump_clock, client):
    """Past ``RESYNC_LIMIT`` drops it waits longer before each new watch,
    but never gives up: a runner that exited would leave its jobs, and
    reload everything on its restart anyway (a bulk deploy of 3000 jobs
    made five runners exit this way)."""

    class Impatient(GatedRoot):
        RESYNC_LIMIT = 0

    await client.set(PREFIX | "k", value=0)
    async with client.mirror(PREFIX, root_type=Impatient, need_wait=True) as root:
        await root.wait_loaded()
        root.gate = anyio.Event()
        for n in range(300):
            await client.set(PREFIX | "k", value=n)
        root.gate.set()
        await wait_for(lambda: mirrored(root).get("k") == 299, timeout=60, step=0.5, what="the last value")
        assert root.resyncs >= 1


def test_the_pause_grows_past_the_limit_and_is_capped():
    pauses = [ResyncRoot.resync_pause(n) for n in range(1, 30)]
    assert pauses[:3] == pytest.approx([0.1, 0.2, 0.3])
    assert pauses == sorted(pauses)  # never shorter for more drops
    assert pauses[ResyncRoot.RESYNC_LIMIT] == pytest.approx(2 * pauses[ResyncRoot.RESYNC_LIMIT - 1])
    assert max(pauses) == ResyncRoot.RESYNC_MAX_PAUSE


class GatedLazyRoot(LazyRoot):
    """A `LazyRoot` of `GateEntry` (see `GatedRoot`)."""

    child_type = GatedRoot.child_type

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.gate = anyio.Event()
        self.gate.set()
        self.runs = 0

    async def running(self):
        self.runs += 1
        await super().running()


async def test_a_lazy_mirror_fetches_what_it_knew_again_after_a_dropped_watch(autojump_clock, client):
    for i in range(5):
        await client.set(PREFIX + (f"k{i}",), value=i)
    await client.set(PREFIX | "gone", value="soon")
    await client.set(PREFIX | "still", value="unchanged")
    async with client.mirror(PREFIX, root_type=GatedLazyRoot, need_wait=True) as root:
        await root.wait_loaded()
        assert mirrored(root) == {} and root.fetches == 0  # nothing read at start
        await root.fetch_entries([("k1",), ("gone",), ("still",), ("never",)])
        assert mirrored(root) == {"k1": 1, "gone": "soon", "still": "unchanged"}

        root.gate = anyio.Event()  # the consumer stalls on the next change
        for n in range(300):
            await client.set(PREFIX + (f"k{n % 7}",), value=1000 + n)
        await client.delete(PREFIX | "gone")
        await client.set(PREFIX | "never", value="now")
        root.gate.set()

        async def caught_up():
            store = await stored(client)
            if not {("k1",), ("gone",), ("still",), ("never",)} <= root._known:
                return False  # (fetching them again)
            return all(mirrored(root).get(k[0]) == store.get(k[0]) for k in root._known)

        with anyio.fail_after(30):
            await wait_for(lambda: root.resyncs >= 1, timeout=30, step=0.1, what="the watch dropped")
            await wait_for(caught_up, timeout=30, step=0.1, what="the known entries to equal the store")
        assert "gone" not in mirrored(root) and mirrored(root)["never"] == "now"
        assert root.follow(P("still")).sets == 1  # unchanged: not set again
        assert root.runs == 1

        # and the new watch is live
        await client.set(PREFIX | "after", value=1)
        await wait_for(lambda: mirrored(root).get("after") == 1, timeout=10, step=0.05, what="the new watch")
