"""Repairs of the packages DistKV 0.65 runs on, applied at run time.

One module per upstream package; each names the ``PACKAGE`` and the
release (``TARGET``) it was written for, since a repair replaces that
release's code.  Nothing installed is edited.  This is the one place
that applies them:

* `apply_library` (every handler of ours: `CodeRoot`, the runner roots):
  `trio` (tracebacks of exception groups) and `distkv_reader` (a client
  whose loop was busy for a second keeps its connection);
* `apply_client` (every ``distkv client`` command of this project, and
  DistKV's own through ``distkv_ext/client/main.py``): that, `distkv`,
  `moat_util` (loader), `asyncscope`;
* `apply_server` (the servers this project starts, see `main`): those
  and `moat_mqtt`, moat-util's main-scope repair, DistKV's conditional
  writes (`distkv.apply_server`), `distkv_admin` (DistKV's
  administrative commands need an administrator) and a flow-control
  window that keeps a busy client's watches (`distkv_flow`; also applied
  by `boot`, before any ``distkv`` process reads its configuration).

`check_versions` lists repairs whose package is not at its target; a
test fails then, so a dependency update is noticed, not silently
half-repaired.
"""

import importlib
import importlib.metadata

from . import asyncscope, distkv, distkv_flow, distkv_reader, moat_util, trio

__all__ = ["apply_library", "apply_client", "apply_server", "check_versions", "REPAIRS"]

#: Every repair module (below this package), in the order they are applied.
REPAIRS = (
    "trio",
    "distkv_reader",
    "asyncscope",
    "moat_util",
    "distkv",
    "distkv_flow",
    "moat_mqtt",
    "distkv_admin",
)


def apply_library() -> None:
    """Apply what any process running this project's handlers needs
    (idempotent): tracebacks of exception groups that do not crash, and
    DistKV connections that outlive a busy second."""
    trio.apply()
    distkv_reader.apply()


def apply_client() -> None:
    """Apply what ``distkv client ...`` commands need (idempotent)."""
    apply_library()
    asyncscope.apply()
    moat_util.apply()
    distkv.apply()


def apply_server() -> None:
    """Apply what this project's ``distkv server`` processes need
    (idempotent): the client repairs, moat-util's main scope and
    ``-C`` handling, moat-mqtt's broker-restart repairs, and administrative
    commands for administrators only (`distkv_admin`)."""
    # lazy: moat-mqtt costs ~50 ms, DistKV's server module more; only servers need them
    from . import distkv_admin, moat_mqtt

    apply_client()
    distkv_flow.apply()
    moat_util.repair_main_scope()
    distkv.apply_server()
    moat_mqtt.apply()
    distkv_admin.apply()


def check_versions() -> list[tuple[str, str, str]]:
    """``[(package, target, installed), ...]`` for every repair whose
    package is installed at another release than it was written for."""
    res: list[tuple[str, str, str]] = []
    for name in REPAIRS:
        mod = importlib.import_module(f"{__name__}.{name}")
        have = importlib.metadata.version(mod.PACKAGE)
        if have != mod.TARGET:
            res.append((mod.PACKAGE, mod.TARGET, have))
    return res
