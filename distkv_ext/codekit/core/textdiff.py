"""Unified diffs of stored code against local files."""

import difflib

__all__ = ["unified_diff", "same_text"]


def _lines(text: str) -> list[str]:
    text = text.rstrip("\n") + "\n" if text else ""
    return text.splitlines(keepends=True)


def same_text(a: str, b: str) -> bool:
    """Are the texts equal, ignoring how many newlines end them?"""
    return _lines(a) == _lines(b)


def unified_diff(stored: str, local: str, stored_name: str, local_name: str, context: int = 3) -> str:
    """The unified diff (a string, empty when `same_text`) turning the
    stored text into the local one.  Trailing newlines do not count."""
    return "".join(
        difflib.unified_diff(_lines(stored), _lines(local), fromfile=stored_name, tofile=local_name, n=context)
    )
