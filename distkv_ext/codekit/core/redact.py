"""The configuration without its secrets, for job code (``_cfg``).

Job code gets the runner's configuration as ``_cfg``.  What it returns
or logs ends up in the store, so the configuration it sees holds no
credentials: `redact` drops the DistKV login (``connect.auth``), the key
files (``runner.group_key``, ``runner.group_key_next``,
``codes.signing_key``), every key whose name says password, secret or
token, and the password of a URL (``mqtt://user:PASSWORD@host``).

This keeps secrets out of results, states and logs by accident.  It is
no wall: job code runs in the runner's process with its rights (it has
``_client``, the runner's connection).  What keeps code you do not trust
from running at all is signed code (``runner: {trusted_keys: ...}``).
"""

import re
from collections.abc import Mapping
from typing import Any

from moat.util import attrdict

__all__ = ["redact", "SECRET_SETTINGS", "HIDDEN"]

#: Settings (paths of keys) that hold secrets or name key files.
SECRET_SETTINGS: tuple[tuple[str, ...], ...] = (
    ("connect", "auth"),
    ("runner", "group_key"),
    ("runner", "group_key_next"),
    ("codes", "signing_key"),
)
#: What a secret is replaced with.
HIDDEN = "(hidden)"

_SECRET_NAME = re.compile(r"passw|secret|token|private", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^/@\s]*@", re.IGNORECASE)


def redact(cfg: Any) -> Any:
    """A copy of the configuration ``cfg`` (nested mappings) without its
    secrets (see the module doc); the original is not changed.  Mappings
    come back as ``attrdict`` (as DistKV's configuration is: ``_cfg.runner``
    works), sequences as lists."""
    res = _copy(cfg, 0)
    for path in SECRET_SETTINGS:
        node = res
        for k in path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(path[-1]) is not None:
            node[path[-1]] = HIDDEN
    return res


def _copy(x: Any, depth: int) -> Any:
    if depth > 50:
        return HIDDEN
    if isinstance(x, Mapping):
        return attrdict(
            (k, HIDDEN if isinstance(k, str) and _SECRET_NAME.search(k) and v is not None else _copy(v, depth + 1))
            for k, v in x.items()
        )
    if isinstance(x, (list, tuple)):
        return [_copy(v, depth + 1) for v in x]
    if isinstance(x, str):
        return _URL_PASSWORD.sub(r"\g<head>" + HIDDEN + "@", x)
    return x
