"""DistKV 0.65.0's flow-control window: 10 messages per stream, raised to
`WINDOW` where the configuration does not say otherwise.

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

The window is the smaller of the server's and the client's setting, so
both sides need it: `apply` raises DistKV's *default* (``distkv.default.CFG``)
before the configuration file is read, for every ``distkv`` process
(`boot`) and every server this project starts (`apply_server`); a
``server: {buffer: N}`` in the file still wins.  Servers that run
without this project installed keep 10: the README says to set
``server: {buffer: 200}`` in their configuration for large groups.
"""

from distkv.default import CFG

__all__ = ["apply", "WINDOW", "PACKAGE", "TARGET"]

PACKAGE = "distkv"
#: The release this was written for.
TARGET = "0.65.0"
#: Messages a DistKV stream may run ahead of its acknowledgements (above
#: the 100 a server's watch queues: a client that reads at all keeps up).
WINDOW = 200
#: DistKV 0.65.0's default.
_DEFAULT = 10


def apply() -> None:
    """Raise DistKV's default ``server.buffer`` to `WINDOW` (idempotent;
    a value other than DistKV's default is left alone)."""
    if CFG.server.get("buffer") == _DEFAULT:
        CFG.server["buffer"] = WINDOW
