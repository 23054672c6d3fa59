"""Reading source text from files and from standard input."""

import os
import sys

from .errors import BadFile

__all__ = ["decode_source", "read_source", "MAX_SOURCE"]

#: Largest source accepted, in bytes.  DistKV sends a value in one
#: message; multi-megabyte procedures are a mistake, not a program.
MAX_SOURCE = 4 * 1024 * 1024


def decode_source(data: bytes, filename: str) -> str:
    """Return ``data`` (bytes) as text, or raise `BadFile`.

    Refused: more than `MAX_SOURCE` bytes, NUL bytes (binary files), and
    anything that is not UTF-8.  A UTF-8 byte-order mark is dropped.
    """
    if len(data) > MAX_SOURCE:
        raise BadFile(f"{filename}: too large (more than {MAX_SOURCE} bytes)")
    if b"\0" in data:
        raise BadFile(f"{filename}: binary file (contains NUL bytes), not Python source")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BadFile(f"{filename}: not UTF-8 text (byte 0x{data[exc.start]:02x} in line {line})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def read_source(filename: str | os.PathLike[str], name: str | None = None) -> str:
    """Read source text from ``filename`` (``-``: standard input).

    Returns the text as `decode_source` does.  Raises `BadFile` when the
    file cannot be read, is too large or is not UTF-8 text; its message
    calls the file ``name`` (default: ``filename``).
    """
    if filename == "-":
        data = sys.stdin.buffer.read(MAX_SOURCE + 1)
        return decode_source(data, name or "<stdin>")
    name = name or str(filename)
    try:
        with open(filename, "rb") as f:
            data = f.read(MAX_SOURCE + 1)
    except OSError as exc:
        raise BadFile(f"{name}: {exc.strerror or exc}") from None
    return decode_source(data, name)
