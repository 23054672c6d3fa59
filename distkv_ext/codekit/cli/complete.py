"""Shell-completion callbacks of the commands' arguments (stored paths).

The callbacks answer from `CACHE`, which the completion helper
(`distkv_ext.devtools.complete`, behind ``distkv-code-complete``) fills
from the server before it completes; without it they offer nothing.
"""

__all__ = ["CACHE", "complete_procedures", "complete_modules", "complete_jobs", "complete_groups"]

#: {"code"|"module"|"job"|"group": [stored names]}, filled by the helper.
CACHE: dict[str, list[str]] = {}


def _matching(kind, incomplete):
    return sorted(p for p in CACHE.get(kind, ()) if p.startswith(incomplete))


def complete_procedures(ctx, param, incomplete):
    """Stored procedure paths (for PATH of ``code`` and ``run set -c``)."""
    return _matching("code", incomplete)


def complete_modules(ctx, param, incomplete):
    """Stored module paths."""
    return _matching("module", incomplete)


def complete_jobs(ctx, param, incomplete):
    """Stored job paths."""
    return _matching("job", incomplete)


def complete_groups(ctx, param, incomplete):
    """Runner groups that have jobs."""
    return _matching("group", incomplete)
