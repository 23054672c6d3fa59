"""Repair of DistKV 0.65.0's server: its administrative commands need an administrator.

DistKV 0.65 checks ACLs on the data commands only.  Every authenticated
user (its password users are all "super root") may, on a stock server:

* write and delete any meta data (``set_internal``, ``delete_internal``,
  and ``set_value`` on a path that starts with None): the ACLs that are
  meant to hold the user, the users, the codecs and types;
* read it (``get_internal``, ``enum_internal``, ``get_tree_internal``):
  among it every user's password hash, which is what the password login
  sends, so it logs in as anybody, the administrator included;
* add and change users (``auth_set``), switch authentication off
  (``set_auth_typ``), apply raw updates past every ACL (``update``), read
  entries by their event (``get_value`` with ``node``/``tick``), make the
  server write its state or log to a file of its choosing (``save``,
  ``log``), drop servers from the cluster (``kill_node``), inject
  ``info`` and deletion events (``fake_info``, ``fake_info_send``,
  ``check_deleted``), and subscribe to every topic of the broker with a
  wildcard (``msg_monitor`` of ``#``), which carries every update of
  every entry, past the read ACL.

With this repair (applied by `distkv_ext.codekit.upstream.apply_server`
to the servers this project starts: ``distkv-code-server``,
``distkv-code-node``) these need an *administrator*: a user that no ACL
restricts (no ``acl`` parameter, or ``acl *``), as every client of a
server without authentication is.  Anybody else gets the error
`AdminRequired` and nothing happens.  Data commands keep DistKV's own
ACL checks.  Nothing installed is edited.
"""

import logging
from collections.abc import Sequence
from typing import Any

import distkv.server as ds
from distkv.exceptions import ClientError
from distkv.types import NullACL

__all__ = ["apply", "PACKAGE", "TARGET", "ADMIN_ONLY", "AdminRequired", "is_admin", "refusal"]

PACKAGE = "distkv"
#: The release this repair was written for (see `distkv_ext.codekit.upstream`).
TARGET = "0.65.0"

logger = logging.getLogger(__name__)
_applied = False

#: Commands only an administrator may send.
ADMIN_ONLY = frozenset(
    {
        "get_internal",
        "set_internal",
        "delete_internal",
        "enum_internal",
        "get_tree_internal",
        "auth_info",
        "auth_get",
        "auth_set",
        "auth_list",
        "set_auth_typ",
        "update",
        "save",
        "log",
        "kill_node",
        "fake_info",
        "fake_info_send",
        "check_deleted",
    }
)
_TOPIC_COMMANDS = frozenset({"msg_monitor", "msg_send"})


class AdminRequired(ClientError):
    """A command that only an administrator may send (see the module doc)."""

    etype = "admin"


def is_admin(client: object) -> bool:
    """Is this server-side client an administrator: logged in, and no ACL
    restricts it (DistKV's `NullACL`)?"""
    return getattr(client, "user", None) is not None and getattr(client, "acl", None) is NullACL


def refusal(client: object, msg: Any) -> str | None:
    """Why ``msg`` from ``client`` is refused (one line), or None."""
    if getattr(client, "user", None) is None or getattr(client, "_user", None) is not None:
        return None  # not logged in (yet): DistKV itself answers that
    if is_admin(client) or not hasattr(msg, "get"):
        return None
    action = str(msg.get("action"))
    if action in ADMIN_ONLY:
        return f"{action} needs an administrator (a user without an ACL)"
    path = msg.get("path")
    if isinstance(path, Sequence) and not isinstance(path, (str, bytes)) and any(p is None for p in path):
        return f"{action} of DistKV's meta data needs an administrator"
    if action == "get_value" and "node" in msg:
        return "get_value by event needs an administrator"
    if action in _TOPIC_COMMANDS:
        topic = msg.get("topic")
        parts = [topic] if isinstance(topic, str) else topic if isinstance(topic, Sequence) else ()
        if any(isinstance(t, str) and ("#" in t or "+" in t) for t in parts):
            return f"{action} with a wildcard topic needs an administrator"
    return None


def apply() -> None:
    """Wrap ``ServerClient.process`` (once): a refused command is answered
    with `AdminRequired`, as DistKV answers any failed command."""
    global _applied
    if _applied:
        return
    _applied = True
    original = ds.ServerClient.process

    async def process(self, msg, evt=None):
        reason = refusal(self, msg)
        if reason is None:
            return await original(self, msg, evt)
        if evt is not None:
            evt.set()
        logger.warning("refused for %s: %s", getattr(self.user, "ident", "?"), reason)
        await self.send({"error": repr(AdminRequired(reason)), "seq": msg.seq})  # as DistKV reports errors

    ds.ServerClient.process = process
