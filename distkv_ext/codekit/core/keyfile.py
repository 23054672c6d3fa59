"""Key files: base64 text of random bytes, readable by their owner only.

The group key (``runner: {group_key: FILE}``, what ``openssl rand
-base64 32`` prints) and the code signing key (``codes: {signing_key:
FILE}``, an Ed25519 seed) are such files.  `write_key_file` creates one
(mode 0600, never over an existing file); `read_key_file` reads and
checks one, naming the setting in its error.
"""

import base64
import binascii
import os
import stat

from .errors import BadKeyFile, InputRefused

__all__ = ["read_key_file", "write_key_file", "loose_mode", "MAX_KEY_FILE"]

#: A key file is small; more than this is not a key file.
MAX_KEY_FILE = 4096


def read_key_file(filename: str, setting: str, *, min_bytes: int = 32, max_bytes: int | None = None) -> bytes:
    """The key in ``filename`` (base64 text; blank lines and ``#`` comments
    are ignored) as bytes.

    Raises `BadKeyFile` naming ``setting`` (e.g. ``runner.group_key``) when
    the file cannot be read, is no base64, or the key has fewer than
    ``min_bytes`` (or more than ``max_bytes``) bytes."""
    if not isinstance(filename, str) or not filename:
        raise BadKeyFile(f"{setting} must name a key file, not {filename!r}")
    try:
        with open(filename, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise BadKeyFile(f"{setting}: cannot read {filename}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE:
        raise BadKeyFile(f"{setting}: {filename} is too large for a key file")
    try:
        lines = [ln.strip() for ln in data.decode("ascii").splitlines()]
        text = "".join(ln for ln in lines if ln and not ln.startswith("#"))
        key = base64.b64decode(text, validate=True)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        raise BadKeyFile(f"{setting}: {filename} holds no base64 text") from None
    if len(key) < min_bytes:
        raise BadKeyFile(f"{setting}: the key in {filename} has {len(key)} bytes, it needs at least {min_bytes}")
    if max_bytes is not None and len(key) > max_bytes:
        raise BadKeyFile(f"{setting}: the key in {filename} has {len(key)} bytes, not {max_bytes}")
    return key


def loose_mode(filename: str) -> str | None:
    """A warning if ``filename`` can be read by others than its owner
    (group or world bits set), else None."""
    try:
        mode = os.stat(filename).st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{filename} can be read by others (mode {stat.S_IMODE(mode):04o}); chmod 600 it"
    return None


def write_key_file(filename: str, key: bytes) -> None:
    """Write ``key`` as base64 text to the new file ``filename`` (mode 0600).

    Refuses (`InputRefused`) to overwrite an existing file, or when the
    file cannot be created."""
    try:
        fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputRefused(f"{filename} exists; not overwritten (remove it first to make a new key)") from None
    except OSError as exc:
        raise InputRefused(f"cannot create {filename}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(base64.b64encode(key).decode("ascii") + "\n")
