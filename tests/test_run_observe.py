"""`GroupObserver`: hearing a runner group without joining it (the status
page's view of the members), against DistKV's in-process servers."""

import anyio

from distkv_ext.run import Group, GroupObserver, group_topic
from tests.helpers import wait_for


async def test_observer_hears_members_and_stays_invisible(client):
    topic = group_topic("any", "obs")
    changes = []
    claims = []
    obs = GroupObserver(
        client,
        topic,
        timeout=1.0,
        on_change=lambda: changes.append(1),
        on_claim=lambda t, job, node: claims.append((t, job, node)),
    )
    g1 = Group(client, topic, "n1", ping=0.2, timeout=1.0, weight=2, load=lambda: 3)
    g2 = Group(client, topic, "n2", ping=0.2, timeout=1.0)
    async with anyio.create_task_group() as tg:
        await tg.start(obs.run)
        s1, s2 = anyio.CancelScope(), anyio.CancelScope()

        async def run(g, scope):
            with scope:
                await g.run()

        tg.start_soon(run, g1, s1)
        tg.start_soon(run, g2, s2)
        await wait_for(lambda: {m.name for m in obs.members() if m.live} == {"n1", "n2"}, timeout=10)
        m1 = next(m for m in obs.members() if m.name == "n1")
        assert (m1.weight, m1.load) == (2.0, 3) and changes
        # the runners never hear the observer
        await anyio.sleep(1.5)
        assert set(g1.live()) == {"n1", "n2"} and set(g2.live()) == {"n1", "n2"}
        # claims are reported, junk is counted and ignored
        g1.send_claim("claim", "job.a")
        await client.msg_send(topic, "not a dict")
        await client.msg_send(topic, {"node": 42})
        await wait_for(lambda: ("claim", "job.a", "n1") in claims and obs.dropped >= 2, timeout=10)
        # a member that dies silently is shown gone after the timeout; one that leaves, dropped
        s2.cancel()
        await wait_for(lambda: not next(m for m in obs.members() if m.name == "n2").live, timeout=10)
        s1.cancel()  # no more heartbeats, then goodbye
        await anyio.sleep(0.3)
        await g1.leave()
        await wait_for(lambda: "n1" not in {m.name for m in obs.members()}, timeout=10)
        tg.cancel_scope.cancel()


async def test_observer_of_a_keyed_group_checks_the_mac(client, tmp_path):
    """With the group's key the page believes only messages with a valid
    MAC: a member forged without the key is dropped (no MAC), as the
    runners drop it."""
    from distkv_ext.run import GroupKeys, new_group_key

    new_group_key(str(tmp_path / "k"))
    keys = GroupKeys.load(str(tmp_path / "k"))
    topic = group_topic("any", "obskey")
    obs = GroupObserver(client, topic, timeout=1.0, keys=keys)
    g1 = Group(client, topic, "n1", ping=0.2, timeout=1.0, keys=keys)
    forger = Group(client, topic, "ghost", ping=0.2, timeout=1.0)  # no key
    async with anyio.create_task_group() as tg:
        await tg.start(obs.run)
        await tg.start(g1.run)
        await tg.start(forger.run)
        await wait_for(lambda: obs.channel.dropped["no-mac"] >= 3, timeout=10)
        assert [m.name for m in obs.members() if m.live] == ["n1"]
        tg.cancel_scope.cancel()
