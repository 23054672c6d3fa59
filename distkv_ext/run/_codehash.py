"""Content hashes of procedures, for pinned jobs."""

import hashlib
import json

__all__ = ["code_hash"]


def code_hash(value):
    """A short, stable hash of a stored procedure's code and settings."""
    if not isinstance(value, dict):
        return None
    key = {
        "code": value.get("code"),
        "is_async": value.get("is_async"),
        "vars": list(value.get("vars") or ()),
        "requires": list(value.get("requires") or ()),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
