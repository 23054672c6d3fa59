"""Shared fixtures (their helpers are in `tests.helpers`).

In-process (DistKV's ``stdtest`` harness, one per test):

* `cluster`: one server; `cluster2`: two servers (``st.client(i)``);
* `client`: a client of `cluster`'s server;
* `cr`: a `CodeRoot` handler on `client`.

Real processes:

* `node` (one for the session): a broker and two ``distkv server``
  processes; ``node.run("code", "list")`` runs ``distkv -c CFG client code
  list``.  Tests share it, so each uses paths and groups of its own and
  never lists, prunes or kills the whole store; a test that must, gets
  servers of its own (`tests.helpers.running_node`, or a module's own
  ``node`` fixture, as in test_cli_deploy.py).  It is stopped before the
  fault drills start.

Markers (setup.cfg): ``drill`` is set here on everything in tests/drills;
``slow`` marks tests that take more than about 5 s or start several real
processes; ``alone`` the few that fail beside other tests (real-time
timing against other processes), which ``./dev.sh test`` runs with the
drills, one at a time.  ``./dev.sh fast`` runs ``-m "not drill and not slow"``.
"""

import contextlib
import os

import distkv.mock.mqtt
import pytest

from distkv_ext.codekit import upstream
from distkv_ext.devtools import ports
from tests.helpers import in_process_cluster, running_node

# as every process running our handlers does: tracebacks of exception
# groups format (pytest's report of a failure with one included)
upstream.apply_library()
# as the servers this project runs do: a conditional write is checked and
# made in one step (DistKV's in-process servers run in this process)
upstream.distkv.apply_server()
# and a watch survives a reader that lags behind hundreds of changes
upstream.distkv_flow.apply()

_SHARED = contextlib.ExitStack()  # the session's `node`


def _harness_ports():
    """Move DistKV's in-process harness (``distkv.mock.mqtt``) out of the
    ephemeral port range.  It binds its broker on 40000 + pid % 10000 and
    its servers on the ports after it, for the whole test; ports there are
    what the kernel hands out to every ``bind(0)`` (`free_ports`: the real
    servers and brokers of other tests) and outgoing connection.  Beside
    other test processes (pytest-xdist) one such port was taken once,
    "Address already in use", and 48 tests of that process failed.  Here:
    `ports.HARNESS` (21000-26999; the kernel's range starts at 32768), 20
    ports per process, apart for processes whose pids differ by less than 300."""
    port = ports.HARNESS[0] + (os.getpid() % 300) * 20
    distkv.mock.mqtt.PORT = port
    distkv.mock.mqtt.broker_cfg["listeners"]["default"]["bind"] = f"127.0.0.1:{port}"
    distkv.mock.mqtt.URI = f"mqtt://127.0.0.1:{port}/"


_harness_ports()


def pytest_collection_modifyitems(session, config, items):
    """Mark the fault drills ``drill`` and ``slow``, and run them last: they
    take minutes, load the machine and kill processes; the quick tests
    report first."""
    for item in items:
        if "drills" in item.path.parts:
            item.add_marker(pytest.mark.drill)
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: "drills" in item.path.parts)


def pytest_runtest_setup(item):
    """The drills load the machine and time things: stop the shared node
    first (they run last, so nothing needs it after them)."""
    if item.get_closest_marker("drill"):
        _SHARED.close()


@pytest.fixture
async def cluster():
    async with in_process_cluster(n=1) as st:
        yield st


@pytest.fixture
async def cluster2():
    async with in_process_cluster(n=2) as st:
        yield st


@pytest.fixture
async def client(cluster):
    async with cluster.client() as c:
        yield c


@pytest.fixture
async def cr(client):
    from distkv_ext.code import CodeRoot

    return await CodeRoot.as_handler(client)


@pytest.fixture(scope="session")
def node(tmp_path_factory):
    """Two real DistKV server processes and a broker, shared by the session."""
    with _SHARED:
        yield _SHARED.enter_context(running_node(tmp_path_factory.mktemp("node"), n=2))
