"""How a runner writes a job's state (`StateEntry.save`), against an
in-process DistKV server: writes of one state go one at a time, each
sending the attributes as they are then, and a value that arrives from
the store meanwhile undoes neither what the caller set nor what it is
about to write.

At 10,000 jobs on five runners, 500 jobs never ran: a run's end ("node:
none, finished") waited behind the same runner's slow note "stopping:
its code has not ended yet", whose completion set the attributes back to
what it had written, so the end wrote "node: r5" again, and the job
stayed held by a live runner that no longer ran it.
"""

import anyio
import pytest
from distkv.exceptions import ServerError

from distkv_ext.codekit.store.resync import ResyncRoot
from distkv_ext.run import STATE_PREFIX, StateEntry
from tests.helpers import wait_for

BASE = STATE_PREFIX + ("any", "sw")
PATH = BASE + ("j",)


class StatesRoot(ResyncRoot):
    """A mirror of a group's states and nothing else (a runner root would
    also plan, note and forget them)."""

    @classmethod
    def child_type(cls, name):
        return StateEntry

    def state_changed(self, state, old_node):
        pass

    async def spawn(self, fn, *args):
        self._tg.start_soon(fn, *args)


@pytest.fixture
async def states(client):
    async with client.mirror(BASE, root_type=StatesRoot, need_wait=True) as root:
        yield root


async def _state(client, states):
    """The state of job j, first written as held by r5."""
    await client.set(PATH, value={"node": "r5", "last_node": "r5", "runs": 1, "reason": "started"})
    st = states.follow(("j",), create=True)
    await wait_for(lambda: st.node == "r5", timeout=10, what="the state")
    return st


async def test_a_slow_write_does_not_undo_the_next_one(client, states):
    st = await _state(client, states)
    gate = anyio.CapacityLimiter(1)
    await gate.acquire()  # the first write waits here: slow
    async with anyio.create_task_group() as tg:
        st.waiting = "stopping: its code has not ended yet"
        tg.start_soon(lambda: st.save(gate=gate))
        await anyio.sleep(0.2)
        st.node, st.reason, st.waiting = None, "finished", None  # the run's end, while that write waits
        tg.start_soon(st.save)
        await anyio.sleep(0.2)
        gate.release()
    stored = (await client.get(PATH))["value"]
    assert (stored["node"], stored["reason"]) == (None, "finished")
    assert (st.node, st.reason) == (None, "finished")


async def test_a_value_arriving_while_a_write_waits_is_applied_after_it(client, states):
    """Another node's write (a take-over) lands while ours waits: ours is
    still conditional on what we knew, so it fails and theirs stands,
    both in the store and in our attributes."""
    st = await _state(client, states)
    gate = anyio.CapacityLimiter(1)
    await gate.acquire()
    with pytest.raises(ServerError):  # DistKV's chain check
        async with anyio.create_task_group() as tg:
            st.node, st.reason = None, "finished"
            tg.start_soon(lambda: st.save(gate=gate))
            await anyio.sleep(0.2)
            await client.set(PATH, value={"node": "r2", "last_node": "r2", "runs": 2, "reason": "taken over"})
            await anyio.sleep(0.5)
            assert (st.node, st.reason) == (None, "finished")  # held back: what we are about to write stays
            gate.release()
    assert (await client.get(PATH))["value"]["node"] == "r2"
    await wait_for(lambda: st.node == "r2", timeout=10, what="their value, applied after our write")
