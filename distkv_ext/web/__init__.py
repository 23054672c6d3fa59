"""The live status page of the runners: ``distkv client run web``.

A feature without a command of its own (no ``client.py``): ``distkv
client run web`` calls `serve_web`.  One server process watches the
store once for every browser (runner entries, states, output, DistKV's
error tree, procedures and their history) and listens read-only to the
groups' channels; it serves

* ``/``: jobs, group members, open errors, procedures (plain HTML, kept
  live by server-sent events from ``/events``);
* ``/job?k=KIND&g=GROUP&p=PATH[&n=NODE]``: one job: definition, state,
  the live tail of its output, its runs;
* ``/api/jobs``, ``/api/members``, ``/api/errors``: the same as JSON;
* ``/metrics``: Prometheus metrics (``distkv_run_*``);
* with ``--allow-actions`` and the token: ``POST /api/errors/ack`` and
  ``POST /api/errors/delete`` (`ACTIONS`).

From Python::

    cfg = WebConfig.load(client._cfg["runner"], groups=["boiler"], port=0)
    url = await tg.start(partial(serve_web, client, cfg))
"""

from ._actions import ACTIONS, Action, acknowledge_error, delete_error
from ._app import make_app
from ._config import DEFAULT_PORT, WebConfig
from ._live import run_model
from ._model import JobRef, StatusModel
from ._security import Guard, load_token
from ._server import serve_web

__all__ = [
    "serve_web",
    "WebConfig",
    "DEFAULT_PORT",
    "StatusModel",
    "JobRef",
    "run_model",
    "make_app",
    "Guard",
    "load_token",
    "Action",
    "ACTIONS",
    "acknowledge_error",
    "delete_error",
]
