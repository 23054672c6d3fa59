"""The runner daemon behind ``distkv client run all``.

`run_daemon` starts the procedure and module handlers and the runner
roots of a group (by default all three kinds: this machine's any-node,
all-node and single-node jobs), says once what it serves (`announce`),
tells systemd it is ready (``READY=1``; ``WATCHDOG=1`` pings while its
event loop is alive), and runs until SIGTERM or SIGINT; then it stops
cleanly: it leaves the group (the others take over its any-node jobs at
once), stops its jobs and records that in their state entries.  With
``metrics=(HOST, PORT)`` it serves its Prometheus metrics (`_metrics`).
"""

import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, overload

import anyio
import anyio.abc
from moat.util import NotGiven

from distkv_ext.code import CodeRoot
from distkv_ext.codekit.core.errors import BadArguments, ServerUnreachable
from distkv_ext.codekit.store.entries import list_entries
from distkv_ext.codekit.store.errtree import forget_dead_pids, name_error_records

from . import _metrics
from ._config import RunnerConfig
from ._explain import explain_job
from ._group import NameClash
from ._layout import WEB_PREFIX, runner_subpath
from ._root import AllRunnerRoot, AnyRunnerRoot, SingleRunnerRoot, _RunnerRoot
from ._sdnotify import notify, watchdog_interval
from ._stopguard import StopGuard, hard_exit

logger = logging.getLogger(__name__)

__all__ = ["run_daemon", "KINDS", "ALL_KINDS", "kinds_text", "status_pages"]

#: runner kind -> its root class
KINDS: dict[str, type[_RunnerRoot]] = {"any": AnyRunnerRoot, "all": AllRunnerRoot, "single": SingleRunnerRoot}
#: What ``run all -g GROUP`` serves without ``-n``/``--all-nodes``.
ALL_KINDS = ("any", "all", "single")


async def _watchdog(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await anyio.sleep(interval)


async def _first_lost(roots: Sequence[_RunnerRoot]) -> BaseException:
    """Wait until some root has lost its server (or its name); then what
    it lost, a `NameClash` first if several roots noticed at once (the
    same heartbeat of a namesake reaches each of our groups)."""
    done = anyio.Event()

    async def watch(root: _RunnerRoot) -> None:
        await root.lost_event.wait()
        done.set()

    async with anyio.create_task_group() as tg:
        for root in roots:
            tg.start_soon(watch, root)
        await done.wait()
        tg.cancel_scope.cancel()
    lost = [root.lost for root in roots if root.lost is not None]
    return next((exc for exc in lost if isinstance(exc, NameClash)), lost[0])


async def _die_with_the_connection(roots: Sequence[_RunnerRoot]) -> None:
    """The daemon cannot work without its server: leave (exit status 5),
    so that systemd restarts it, rather than hang.  One error however
    many roots noticed: several would make a group of errors, which has
    no exit status of its own."""
    lost = await _first_lost(roots)
    if isinstance(lost, NameClash):
        notify(f"STATUS={lost}")
        raise BadArguments(f"{lost}: give each runner its own --name")
    notify("STATUS=lost the DistKV server")
    raise ServerUnreachable(f"lost the connection to the DistKV server: {lost!r}")


def kinds_text(kinds: Sequence[str]) -> str:
    """``any-node``, ``any-node and all-node``, ``any-node, all-node and single-node``."""
    words = [f"{k}-node" for k in kinds]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


async def status_pages(client: Any, group: Any = None) -> list[dict[str, Any]]:
    """The status pages (``run web``) that announced themselves at
    ``WEB_PREFIX`` (and show ``group``, if given): dicts with url, groups
    (empty: all), host, pid, started.  A page killed with -9 stays listed
    until a page on its host and port starts again."""
    res = []
    try:
        async for _, v in list_entries(client, WEB_PREFIX):
            if not isinstance(v, dict) or not isinstance(v.get("url"), str):
                continue
            groups = v.get("groups") or ()
            if group is None or not groups or str(group) in [str(g) for g in groups]:
                res.append(dict(v))
    except Exception as exc:  # nothing announced, or no right to read it
        logger.debug("status pages: %r", exc)
    return sorted(res, key=lambda v: str(v.get("url")))


def _running_jobs(roots: Sequence[_RunnerRoot]) -> list[str]:
    """The jobs whose runs have not ended (read-only: also from a thread)."""
    return [str(run.entry.job_name) for root in roots for run in list(root.scheduler.index.runs.values())]


def _count_jobs(roots: Sequence[_RunnerRoot]) -> dict[_metrics.JobCount, int]:
    res: dict[_metrics.JobCount, int] = {}
    for root in roots:
        kind, group = _metrics.labels_of(root.policy.kind, root.state_subpath)
        for entry in root.all_children:
            if not isinstance(entry.value, dict):
                continue
            st = root.state_for(entry.job_path, create=False)
            value = None if st is None or st.value is NotGiven else st.value
            key = (kind, group, str(explain_job(entry.value, value)["status"]))
            res[key] = res.get(key, 0) + 1
    return res


def _count_dropped(roots: Sequence[_RunnerRoot]) -> dict[tuple[str, str], int]:
    """Group messages not believed, by (kind, group): a group that counts
    them has ``dropped``, {reason: n}."""
    res: dict[tuple[str, str], int] = {}
    for root in roots:
        counts = getattr(root.group, "dropped", None)
        if isinstance(counts, dict):
            key = _metrics.labels_of(root.policy.kind, root.state_subpath)
            res[key] = res.get(key, 0) + sum(int(n) for n in counts.values())
    return res


async def _summary(
    client: Any,
    roots: Sequence[_RunnerRoot],
    group: Any,
    kinds: Sequence[str],
    metrics: tuple[str, int] | None,
) -> str:
    """What the daemon says once when it has started (see `run_daemon`)."""
    name = roots[0].node
    found = []
    for root in roots:
        n = sum(1 for e in root.all_children if isinstance(e.value, dict))
        found.append(
            f"{n} {root.policy.kind}-node" + (f" (of node {root.node})" if root.policy.kind == "single" else "")
        )
    keys = roots[0].group_keys
    lines = [
        f"distkv-code runner {name} of group {group}: serving {kinds_text(kinds)} jobs",
        f"  jobs found: {', '.join(found)}",
        f"  group channel: authenticated ({keys.describe()}, runner.group_key)"
        if keys.keyed
        else "  group channel: NOT authenticated (no runner.group_key): anyone who can reach"
        " a DistKV server or the MQTT broker can speak in it",
    ]
    if roots[0].config.tags:
        lines.append(f"  tags: {', '.join(roots[0].config.tags)} (jobs that require or prefer them run here)")
    trusted = roots[0].config.trusted_keys
    if trusted:
        lines.append(f"  code: only code signed by one of {len(trusted)} trusted key(s) runs (runner.trusted_keys)")
    pages = await status_pages(client, group)
    if pages:
        for p in pages:
            since = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(p.get("started") or 0)))
            lines.append(f"  status page: {p['url']} (run web on {p.get('host')}, pid {p.get('pid')}, since {since})")
    else:
        lines.append(f"  status page: none announced (start one: distkv client run web -g {group})")
    if metrics is not None:
        lines.append(f"  metrics: http://{_hostport(*metrics)}/metrics")
    return "\n".join(lines)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@overload
async def run_daemon(
    client: Any,
    kind: str,
    group: Any,
    *,
    node: str | None = None,
    cfg: Mapping[str, Any] | RunnerConfig | None = None,
    metrics: tuple[str, int] | None = None,
    announce: Callable[[str], None] | None = None,
    task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> _RunnerRoot: ...


@overload
async def run_daemon(
    client: Any,
    kind: Sequence[str],
    group: Any,
    *,
    node: str | None = None,
    cfg: Mapping[str, Any] | RunnerConfig | None = None,
    metrics: tuple[str, int] | None = None,
    announce: Callable[[str], None] | None = None,
    task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> list[_RunnerRoot]: ...


async def run_daemon(
    client: Any,
    kind: str | Sequence[str],
    group: Any,
    *,
    node: str | None = None,
    cfg: Mapping[str, Any] | RunnerConfig | None = None,
    metrics: tuple[str, int] | None = None,
    announce: Callable[[str], None] | None = None,
    task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> "_RunnerRoot | list[_RunnerRoot]":
    """Run the runners of ``group`` until SIGTERM/SIGINT, then stop them
    cleanly; return the runner root (``kind`` a string: "any", "all",
    "single") or the list of roots (``kind`` a sequence of them, e.g.
    `ALL_KINDS`, what ``run all -g GROUP`` runs).

    ``node``: with ``kind="single"`` alone, the node whose jobs run here;
    else this node's name in the group (default: the client's name),
    which is also the NODE whose single-node jobs run here.  ``cfg``: a
    `RunnerConfig`, or a mapping updating the ``runner:`` configuration.
    ``metrics``: (host, port) to serve ``/metrics`` on.  ``announce``:
    called once with what the daemon serves (its name, the kinds, the
    jobs found, whether the group channel is authenticated, the status
    pages and metrics address), several lines of text.
    ``task_status.started(...)`` with the return value once it runs.
    Raises `BadArguments` for a bad setting, a metrics address that
    cannot be bound, or when another runner of the group has our name;
    `ServerUnreachable` when the connection to the server is lost.
    """
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    if not kinds or set(kinds) - set(KINDS):
        raise BadArguments(f"unknown runner kinds: {kind!r}")
    if node is None and (len(kinds) > 1 or kinds[0] == "single"):
        node = client.client_name
    # the same name after a restart: a restart adds no error records
    name_error_records(client, f"{client.client_name}.{node or client.client_name}.{group}")
    cr = await CodeRoot.as_handler(client)
    roots: list[_RunnerRoot] = []
    for k in kinds:
        subpath = runner_subpath(k, group, node)
        roots.append(await KINDS[k].as_handler(client, subpath=subpath, code=cr, node=node, cfg=cfg))
    for root in roots:
        root.on_stuck = hard_exit  # job code stuck in the event loop: the process ends (_loopwatch)
        await root.wait_ready()
    with anyio.move_on_after(roots[0].config.timeout):
        await forget_dead_pids(client)  # what earlier versions left at each start
    what = f"{kinds_text(kinds)} runner of group {group} as {roots[0].node}"
    what += f", group {roots[0].group_keys.describe()}"
    if roots[0].config.trusted_keys:
        what += f", only code signed by {len(roots[0].config.trusted_keys)} trusted key(s)"
    logger.info("Started the %s", what)
    stop_metrics: Callable[[], None] | None = None
    collector: _metrics.DaemonCollector | None = None
    if metrics is not None:
        try:
            stop_metrics = _metrics.serve_metrics(*metrics)
        except OSError as exc:
            raise BadArguments(f"cannot serve metrics on {_hostport(*metrics)}: {exc.strerror or exc}") from None
        collector = _metrics.DaemonCollector(lambda: _count_jobs(roots), lambda: _count_dropped(roots))
        _metrics.REGISTRY.register(collector)
    try:
        if announce is not None:
            announce(await _summary(client, roots, group, kinds, metrics))
        guard = StopGuard(roots[0].config.stop_timeout, lambda: _running_jobs(roots))
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            guard.install()  # after the receiver's own handlers: it calls them
            async with anyio.create_task_group() as tg:
                interval = watchdog_interval()
                if interval:
                    tg.start_soon(_watchdog, interval)
                tg.start_soon(_die_with_the_connection, roots)
                notify("READY=1", f"STATUS=running: {what}")
                task_status.started(roots[0] if isinstance(kind, str) else roots)
                async for sig in signals:
                    logger.info("Signal %s: stopping", signal.Signals(sig).name)
                    break
                notify("STOPPING=1", "STATUS=stopping")
                with anyio.CancelScope(shield=True):
                    async with anyio.create_task_group() as stops:  # each leaves its group first
                        for root in roots:
                            stops.start_soon(root.stop)
                if _running_jobs(roots):  # code that ignores its stop: it cannot be cancelled either
                    hard_exit(guard.message())
                guard.cancel()
                tg.cancel_scope.cancel()
    finally:
        if collector is not None:
            _metrics.REGISTRY.unregister(collector)
        if stop_metrics is not None:
            await anyio.to_thread.run_sync(stop_metrics)
    return roots[0] if isinstance(kind, str) else roots
