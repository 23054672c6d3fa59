"""Who may act on the status page: the token, sessions, CSRF.

Actions (acknowledging or deleting an error, and the job actions to
come) are allowed only when the server runs with ``--allow-actions``,
which needs a token: the content of the file ``runner.web_token_file``
(at least 16 characters; the file must not be readable by others).

A request acts when it carries the token

* in an ``Authorization: Bearer TOKEN`` header (scripts; a browser never
  adds that header by itself, so no other site can make it), or
* as the session cookie set by ``POST /login`` with the token in the
  form's body (browsers), *and* the session's CSRF value in the form
  (``csrf``), *and* no ``Origin`` header naming another site.

Every comparison is constant-time (`hmac.compare_digest`).  A token in a
URL (``?token=...``) is refused outright: URLs end up in logs, browser
history and ``Referer`` headers.  Actions are POST only.
"""

import hashlib
import hmac
import os
import secrets
import stat
import time
from typing import Any

from distkv_ext.codekit.core.errors import BadArguments

__all__ = ["load_token", "Guard", "MIN_TOKEN", "COOKIE"]

#: The shortest token accepted.
MIN_TOKEN = 16
#: The session cookie's name.
COOKIE = "distkv_web_session"
#: How long a browser session lasts (seconds).
SESSION_SECONDS = 12 * 3600


def load_token(path: Any) -> str:
    """The token in the file ``path``; `BadArguments` when there is none,
    it is shorter than `MIN_TOKEN`, or others may read the file."""
    if not path:
        raise BadArguments(
            "--allow-actions needs a token: set runner.web_token_file to a file holding one"
            " (e.g. made with: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE)"
        )
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadArguments(f"runner.web_token_file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadArguments(f"runner.web_token_file {path} may be read by others: chmod 600 it")
    if len(token) < MIN_TOKEN or any(c.isspace() for c in token):
        raise BadArguments(
            f"runner.web_token_file {path}: the token must be one word of at least {MIN_TOKEN} characters"
        )
    return token


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


class Guard:
    """Checks who acts.  ``token``: None when actions are off (then
    nothing is allowed)."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self._secret = secrets.token_bytes(32)
        self._sessions: dict[str, float] = {}  # session id -> expiry (monotonic)

    @property
    def actions(self) -> bool:
        """Are actions allowed at all (``--allow-actions``)?"""
        return self.token is not None

    def check_token(self, given: str) -> bool:
        """Is ``given`` the token? (constant-time)"""
        return self.token is not None and _same(given, self.token)

    def login(self, given: str) -> str | None:
        """A new session id when ``given`` is the token, else None."""
        if not self.check_token(given):
            return None
        now = time.monotonic()
        self._sessions = {s: t for s, t in self._sessions.items() if t > now}
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = now + SESSION_SECONDS
        return sid

    def logout(self, sid: str | None) -> None:
        """End the session ``sid``."""
        if sid:
            self._sessions.pop(sid, None)

    def session(self, sid: str | None) -> bool:
        """Is ``sid`` a live session?"""
        if not sid or self.token is None:
            return False
        for known, expiry in list(self._sessions.items()):
            if _same(sid, known):
                return expiry > time.monotonic()
        return False

    def csrf(self, sid: str) -> str:
        """The CSRF value of session ``sid`` (what its forms carry)."""
        return hmac.new(self._secret, sid.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, sid: str, given: str) -> bool:
        """Is ``given`` the CSRF value of session ``sid``? (constant-time)"""
        return _same(given, self.csrf(sid))

    def authorize(
        self, *, bearer: str | None, sid: str | None, csrf: str | None, origin: str | None, host: str | None
    ) -> tuple[bool, str]:
        """May this request act?  (yes, "") or (no, why not)."""
        if self.token is None:
            return False, "read-only: this status page runs without --allow-actions"
        if bearer is not None:
            return (True, "") if self.check_token(bearer) else (False, "wrong token")
        if not self.session(sid):
            return False, "not logged in: log in with the token first (or send Authorization: Bearer TOKEN)"
        if origin is not None and (origin == "null" or origin.split("://", 1)[-1] != host):
            return False, "the request came from another site"
        if sid is None or csrf is None or not self.check_csrf(sid, csrf):
            return False, "missing or wrong CSRF value: reload the page"
        return True, ""
