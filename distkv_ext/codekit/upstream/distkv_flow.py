"""DistKV 0.65.0's flow-control window (10 messages per stream) and queue per
watch (100 changes), raised to `WINDOW` (where the configuration does not
say otherwise) and `WATCH_QUEUE`.

A DistKV server sends a watch's changes to its client at most
``server.buffer`` (default 10) messages ahead of the client's
acknowledgements, which the client sends every third message it has
read; meanwhile it queues at most 100 changes per watch and *drops the
watch* when that queue is full.  So a client that is merely busy for a
moment (a runner starting a thousand jobs) loses its watch of a subtree
that changes faster than ten messages per round trip, and must load
the whole subtree again, which costs the server more than the burst did:
a bulk deploy of 3000 jobs on five runners dropped each runner's
watches 2-11 times, and with a window of 200 not once (``./dev.sh bench
scale --sizes 3000``).

A window of 200 is not enough where the subtree changes faster than a
busy reader reads: at 10,000 jobs a runner's watch of the group's state
sees ~300 changes a second, so a runner whose loop is busy for a second
(a full pass of its scheduler on a loaded machine) still lost its watch,
and the five runners loaded all the states again 40 times in twelve
minutes (``./dev.sh bench scale --sizes 5000,10000``), which fed the
overload that caused it.  So `apply` also
raises the server's queue per watch (``distkv.model.Watcher.q_len``, not
configurable in DistKV) from 100 to `WATCH_QUEUE` changes: a reader that
falls further behind than that still loses its watch, as before.  The
queue holds references to entries the server keeps anyway; it grows only
while its reader lags.

The window is the smaller of the server's and the client's setting, so
both sides need it: `apply` raises DistKV's *default* (``distkv.default.CFG``)
before the configuration file is read, for every ``distkv`` process
(`boot`) and every server this project starts (`apply_server`); a
``server: {buffer: N}`` in the file still wins.  Servers that run
without this project installed keep 10: the README says to set
``server: {buffer: 200}`` in their configuration for large groups.
"""

from distkv.default import CFG
from distkv.model import Watcher  # (every ``distkv`` command loads it anyway)

__all__ = ["apply", "WINDOW", "WATCH_QUEUE", "PACKAGE", "TARGET"]

PACKAGE = "distkv"
#: The release this was written for.
TARGET = "0.65.0"
#: Messages a DistKV stream may run ahead of its acknowledgements (above
#: the 100 a server's watch queues: a client that reads at all keeps up).
WINDOW = 200
#: DistKV 0.65.0's default.
_DEFAULT = 10
#: Changes a server queues per watch beyond the window before it drops
#: the watch (about 15 s of the busiest group state measured: 10,000 jobs).
WATCH_QUEUE = 5000
#: DistKV 0.65.0's queue per watch.
_DEFAULT_QUEUE = 100


def apply() -> None:
    """Raise DistKV's default ``server.buffer`` to `WINDOW` (a value other
    than DistKV's default is left alone) and a server's queue per watch
    to `WATCH_QUEUE` (idempotent)."""
    if CFG.server.get("buffer") == _DEFAULT:
        CFG.server["buffer"] = WINDOW
    if Watcher.q_len == _DEFAULT_QUEUE:
        Watcher.q_len = WATCH_QUEUE
