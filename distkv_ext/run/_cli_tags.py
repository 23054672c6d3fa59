"""The placement options of ``run set``: ``--require-tag`` and ``--prefer-tag``."""

from collections.abc import Callable
from typing import Any, TypeVar

import asyncclick as click

from distkv_ext.codekit.cli.params import Checked
from distkv_ext.codekit.core.whenchecks import tag

__all__ = ["TAG", "TAG_OR_CLEAR", "placement_options", "apply_placement"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: the value that clears a job's tags (``--require-tag -``)
CLEAR = "-"


def _tag_or_clear(text: str) -> str:
    return CLEAR if text.strip() == CLEAR else tag(text)


#: ``--tag TAG`` of ``run all``: a tag, checked.
TAG = Checked(tag, "TAG")
#: ``--require-tag`` / ``--prefer-tag``: a tag, or ``-`` (none).
TAG_OR_CLEAR = Checked(_tag_or_clear, "TAG")


def placement_options(fn: _F) -> _F:
    """``--require-tag TAG`` and ``--prefer-tag TAG`` (repeatable; ``-``: none)."""
    fn = click.option(
        "--prefer-tag",
        "prefer_tags",
        multiple=True,
        type=TAG_OR_CLEAR,
        help="Run it on a runner with this tag while one is live (repeatable: all of them; '-': no preference).",
    )(fn)
    fn = click.option(
        "--require-tag",
        "require_tags",
        multiple=True,
        type=TAG_OR_CLEAR,
        help="Run it only on runners with this tag (run all --tag; repeatable: all of them; '-': anywhere).",
    )(fn)
    return fn


def apply_placement(new: dict[str, Any], require_tags: tuple[str, ...], prefer_tags: tuple[str, ...]) -> None:
    """Set the job's ``require_tags`` / ``prefer_tags`` in ``new`` (an
    entry's value) from the options: tags given replace the stored ones;
    ``-`` clears them; not given: kept."""
    for field, given in (("require_tags", require_tags), ("prefer_tags", prefer_tags)):
        if not given:
            continue
        tags = [t for t in given if t != CLEAR]
        if tags:
            new[field] = list(dict.fromkeys(tags))
        else:
            new.pop(field, None)
