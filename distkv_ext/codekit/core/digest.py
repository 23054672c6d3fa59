"""Content hashes of stored procedures and modules."""

import hashlib
import json

from .values import plain

__all__ = ["content_hash"]


def content_hash(value: object) -> str | None:
    """A short hash of a stored procedure or module: its code and every
    setting but the one-line ``info``; None for a value that is no
    mapping.  Runner entries pin it (``--pin``); the history shows it."""
    if not isinstance(value, dict):
        return None
    key = {k: v for k, v in value.items() if k != "info"}
    text = json.dumps(plain(key), sort_keys=True, default=str)  # a Path hashes as its text
    return hashlib.sha256(text.encode()).hexdigest()[:16]
