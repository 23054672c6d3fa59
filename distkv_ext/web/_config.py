"""The status page's settings: `WebConfig`."""

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from distkv_ext.codekit.core.errors import BadArguments
from distkv_ext.run import GroupKeys, RunnerConfig

from ._security import load_token

__all__ = ["WebConfig", "DEFAULT_PORT"]

#: The port of ``run web`` unless ``--bind`` says otherwise.
DEFAULT_PORT = 8765


@dataclasses.dataclass(frozen=True)
class WebConfig:
    """Where the page listens and what it shows and allows.

    host, port: the address to listen on (port 0: any free one);
    groups: show these runner groups only (empty: all);
    token: the actions' token (None: read-only);
    timeout: seconds of silence after which a group member is gone
    (the groups' ``runner.timeout``); group_keys: the groups' key(s)
    (``runner.group_key``, ``group_key_next``), to check what the page
    hears on their channels as the runners do.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    groups: tuple[str, ...] = ()
    token: str | None = None
    timeout: float = 2.0
    group_keys: GroupKeys = dataclasses.field(default_factory=GroupKeys)

    @property
    def allow_actions(self) -> bool:
        """Are actions allowed (a token is set)?"""
        return self.token is not None

    @classmethod
    def load(
        cls,
        runner_cfg: Mapping[str, Any] | None,
        *,
        groups: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        allow_actions: bool = False,
    ) -> "WebConfig":
        """The settings from the ``runner:`` configuration and the command
        line.  With ``allow_actions`` the token is read from the file
        ``runner.web_token_file``; `BadArguments` when there is none, it is
        too short, or others may read it (see `load_token`), or when a
        group key file cannot be used."""
        rcfg = dict(runner_cfg or {})
        if not isinstance(port, int) or not 0 <= port < 65536:
            raise BadArguments(f"port {port!r}: must be 0..65535")
        token = load_token(rcfg.get("web_token_file")) if allow_actions else None
        rc = RunnerConfig.load(rcfg)
        return cls(
            host=host,
            port=port,
            groups=tuple(dict.fromkeys(str(g) for g in groups)),
            token=token,
            timeout=rc.timeout,
            group_keys=GroupKeys.load(rc.group_key, rc.group_key_next),
        )
