"""Pinned jobs: does the stored code still match the job's pin?

A runner entry's ``pin`` (``run set --pin``, ``code deploy --pin``) is
`digest.pin_hash` of its procedure and every stored module the
procedure needs, transitively; pins of earlier releases (16 hex digits,
the procedure alone) are still honoured.  A job whose code changed since
is not run; its state says why.
"""

from typing import Any

from distkv_ext.codekit.core.digest import LEGACY_PIN_LENGTH, pin_hash, pin_matches

__all__ = ["pin_problem"]


def pin_problem(pin: Any, code_path: Any, proc_value: Any, modules: Any) -> str | None:
    """Why a job pinned to ``pin`` must not run the procedure ``proc_value``
    (at ``code_path``) with the stored ``modules`` (a `ModuleRoot`, or None),
    or None when it may."""
    if not pin:
        return None
    if not isinstance(proc_value, dict):
        return f"procedure {code_path} is not stored; the job is pinned"

    def lookup(name: str) -> Any:
        return None if modules is None else modules.value_of(name)

    if pin_matches(pin, proc_value, lookup):
        return None
    if not isinstance(pin, str):
        return f"the job's pin {pin!r} is no hash; not run"
    what = "procedure" if len(pin) == LEGACY_PIN_LENGTH else "procedure or a module it needs"
    return (
        f"the {what} changed since the job was pinned ({code_path}: pinned {pin[:16]}, now"
        f" {pin_hash(proc_value, lookup)[:16]}); not run"
    )
