"""``distkv client run web``: the status page's server process.

`serve_web` loads the model (`_live`), serves the app (`_app`) with
Hypercorn's trio worker, announces the page in the store (``.distkv web
HOST:PORT``, so that the runner daemons can say where it is), tells
systemd it is ready (``READY=1``, ``WATCHDOG=1`` pings) and runs until
SIGTERM or SIGINT; then it closes its connections (the browsers'
event streams within a second), withdraws the announcement and returns.
"""

import functools
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import anyio
import anyio.abc
from hypercorn.config import Config
from hypercorn.trio import serve

from distkv_ext.codekit.core.errors import BadArguments
from distkv_ext.run import WEB_PREFIX, sd_notify, watchdog_interval

from ._app import make_app
from ._config import WebConfig
from ._live import prefixes, run_model
from ._model import StatusModel
from ._security import Guard

logger = logging.getLogger(__name__)

__all__ = ["serve_web"]


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _watchdog(interval: float) -> None:
    while True:
        sd_notify("WATCHDOG=1")
        await anyio.sleep(interval)


def _public_url(bound: str, host: str) -> str:
    """The URL to tell others: a wildcard address becomes this host's name."""
    if host in ("0.0.0.0", "::", ""):
        port = bound.rsplit(":", 1)[-1]
        return f"http://{socket.gethostname()}:{port}/"
    return bound.rstrip("/") + "/"


async def serve_web(
    client: Any,
    config: WebConfig,
    *,
    announce: Callable[[str], None] | None = None,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the status page of ``client``'s store until SIGTERM/SIGINT
    (see the module doc).  ``announce``: called once with where it
    listens and what it shows; ``task_status.started(url)``.  Raises
    `BadArguments` when the address cannot be bound, `ServerUnreachable`
    when the connection to the DistKV server is lost."""
    model = StatusModel(config.groups)
    guard = Guard(config.token)
    pre = prefixes(client._cfg)
    what = ", ".join(config.groups) if config.groups else "all groups"
    mode = "actions allowed (token)" if guard.actions else "read-only"
    info = f"distkv-code {version('distkv-code')} · {what} · {mode}"
    hc = Config()
    hc.bind = [_hostport(config.host, config.port)]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("distkv_ext.web.http")
    hc.graceful_timeout = 1.0
    stop = anyio.Event()
    stopped = anyio.Event()
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as tg:
            await tg.start(functools.partial(run_model, client, model, timeout=config.timeout, keys=config.group_keys))
            app = make_app(model, guard, client, pre, host=config.host, info=info)

            async def run_http(*, task_status: anyio.abc.TaskStatus[Any]) -> None:
                try:
                    await serve(app, hc, shutdown_trigger=stop.wait, task_status=task_status)  # type: ignore[arg-type]  # an ASGI app; Hypercorn's types are stricter than Starlette's
                finally:
                    stopped.set()

            try:
                binds = await tg.start(run_http)
            except OSError as exc:
                raise BadArguments(f"cannot listen on {hc.bind[0]}: {exc.strerror or exc}") from None
            url = _public_url(binds[0], config.host)
            key = f"{socket.gethostname()}:{url.rsplit(':', 1)[-1].rstrip('/')}"
            await _announce(client, key, url, config)
            if announce is not None:
                announce(
                    f"distkv-code status page: {url} ({what}; {mode})\n"
                    f"  {len(model.jobs)} jobs, {len(model.procs)} procedures, {len(model.errors)} error records"
                )
            interval = watchdog_interval()
            if interval:
                tg.start_soon(_watchdog, interval)
            sd_notify("READY=1", f"STATUS=serving {url}")
            task_status.started(url)
            async for sig in signals:
                logger.info("Signal %s: stopping", signal.Signals(sig).name)
                break
            sd_notify("STOPPING=1", "STATUS=stopping")
            stop.set()
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(5):
                    await stopped.wait()
                with anyio.move_on_after(2):
                    await _withdraw(client, key)
            tg.cancel_scope.cancel()


async def _announce(client: Any, key: str, url: str, config: WebConfig) -> None:
    """Say in the store where this page is (best effort: a user without
    the right to write there still gets a page)."""
    value = {
        "url": url,
        "groups": list(config.groups),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.time(),
        "actions": config.allow_actions,
    }
    try:
        await client.set(WEB_PREFIX + (key,), value=value)
    except Exception as exc:
        logger.warning("could not announce the status page at %s: %r", WEB_PREFIX, exc)


async def _withdraw(client: Any, key: str) -> None:
    try:
        await client.delete(WEB_PREFIX + (key,))
    except Exception as exc:
        logger.debug("could not withdraw the status page: %r", exc)
