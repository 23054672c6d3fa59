"""Shell-completion callbacks of the commands' arguments (stored paths).

The callbacks answer from `CACHE`, which the completion helper
(`distkv_ext.devtools.complete`, behind ``distkv-code-complete``) fills
from the server before it completes; without it they offer nothing.
"""

from asyncclick.shell_completion import CompletionItem

__all__ = ["CACHE", "complete_procedures", "complete_modules", "complete_jobs", "complete_groups", "complete_files"]

#: {"code"|"module"|"job"|"group": [stored names], "jobs_of": {"KIND GROUP": [job names]}},
#: filled by the helper.
CACHE: dict = {}


def _matching(kind, incomplete):
    return sorted(p for p in CACHE.get(kind, ()) if p.startswith(incomplete))


def complete_procedures(ctx, param, incomplete):
    """Stored procedure paths (for PATH of ``code`` and ``run set -c``)."""
    return _matching("code", incomplete)


def complete_modules(ctx, param, incomplete):
    """Stored module paths."""
    return _matching("module", incomplete)


def complete_jobs(ctx, param, incomplete):
    """Stored job paths: of the group (and kind) given before, if any
    (``run why -g boiler <TAB>``)."""
    group = ctx.params.get("group")
    if not group:
        return _matching("job", incomplete)
    node, all_nodes = ctx.params.get("node"), ctx.params.get("all_nodes")
    kind = "all" if all_nodes or node == "-" else "single" if node else "any"
    key = f"{kind} {group}" if kind != "single" else f"single {group} {node}"
    return sorted(p for p in CACHE.get("jobs_of", {}).get(key, ()) if p.startswith(incomplete))


def complete_groups(ctx, param, incomplete):
    """Runner groups that have jobs."""
    return _matching("group", incomplete)


def complete_files(ctx, param, incomplete):
    """File names (the shell completes them)."""
    return [CompletionItem(incomplete, type="file")]
