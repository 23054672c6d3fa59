"""A canonical, typed encoding of stored values, for digests, signatures and MACs.

``canonical(value)`` is the same byte string for the same value on every
machine and every run, and different byte strings for values of
different types: ``"1"``, ``1``, ``1.0`` and ``True`` differ, text and
bytes differ, and a DistKV `Path` differs from its text (``"a.b"``) and
from the list of its elements.  Lists and tuples encode alike, because
DistKV's codec hands every stored list back as a tuple.  Mappings are
encoded with their keys sorted by their own encoding, so insertion order
does not count.

Each value is a tag byte followed by its content; lengths are given
before variable content, so no two values share an encoding::

    N  None          T / F  True / False
    i  int           i<decimal>;
    f  float         f<8 bytes, IEEE 754 big-endian>
    s  text          s<length of UTF-8>:<UTF-8>
    b  bytes         b<length>:<bytes>
    l  list, tuple   l<count>:<items>
    d  mapping       d<count>:<key><value>...  (sorted by key encoding)
    p  Path          p<count>:<elements>

Anything else (sets, objects) raises TypeError: a value that cannot be
stored cannot be signed either.
"""

import struct
from collections.abc import Callable
from typing import Any

from moat.util import Path

__all__ = ["canonical", "MAX_DEPTH"]

#: Nesting deeper than this raises ValueError (stored values are shallow;
#: this bounds the work a hostile value can cause).
MAX_DEPTH = 64


def canonical(value: Any) -> bytes:
    """The canonical typed encoding of ``value`` (see the module doc).

    Raises TypeError for a type that has no encoding, ValueError for
    nesting deeper than `MAX_DEPTH`."""
    out: list[bytes] = []
    _enc(value, out, 0)
    return b"".join(out)


def _str(v: str, out: list[bytes], depth: int) -> None:
    data = v.encode("utf-8", "surrogatepass")
    out.append(b"s%d:" % len(data))
    out.append(data)


def _int(v: int, out: list[bytes], depth: int) -> None:
    out.append(b"i%d;" % v)


def _float(v: float, out: list[bytes], depth: int) -> None:
    out.append(b"f" + struct.pack(">d", v))


def _bytes(v: bytes | bytearray | memoryview, out: list[bytes], depth: int) -> None:
    data = bytes(v)
    out.append(b"b%d:" % len(data))
    out.append(data)


def _seq(v: Any, out: list[bytes], depth: int, tag: bytes = b"l") -> None:
    out.append(tag + b"%d:" % len(v))
    for x in v:
        _enc(x, out, depth + 1)


def _map(v: dict[Any, Any], out: list[bytes], depth: int) -> None:
    items = []
    for k, x in v.items():
        kb: list[bytes] = []
        _enc(k, kb, depth + 1)
        items.append((b"".join(kb), x))
    items.sort(key=lambda kx: kx[0])
    out.append(b"d%d:" % len(items))
    for k, x in items:
        out.append(k)
        _enc(x, out, depth + 1)


_Encoder = Callable[[Any, list[bytes], int], None]
_BY_TYPE: dict[type, _Encoder] = {
    str: _str,
    int: _int,
    float: _float,
    bytes: _bytes,
    list: _seq,
    tuple: _seq,
    dict: _map,
}


def _enc(v: Any, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    t = type(v)
    fn = _BY_TYPE.get(t)  # the common types, exactly (fast); subclasses below
    if fn is not None:
        fn(v, out, depth)
    elif v is None:
        out.append(b"N")
    elif v is True:
        out.append(b"T")
    elif v is False:
        out.append(b"F")
    elif isinstance(v, int):
        _int(v, out, depth)
    elif isinstance(v, float):
        _float(v, out, depth)
    elif isinstance(v, str):
        _str(v, out, depth)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        _bytes(v, out, depth)
    elif isinstance(v, Path):  # before list/tuple: a Path is a sequence too
        _seq(v, out, depth, b"p")
    elif isinstance(v, (list, tuple)):
        _seq(v, out, depth)
    elif isinstance(v, dict):
        _map(v, out, depth)
    else:
        raise TypeError(f"no canonical encoding for {type(v).__name__}")
