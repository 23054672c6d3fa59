"""Code signing keys: making one (``distkv client code keygen``), reading one."""

import os

from distkv_ext.codekit.core.keyfile import read_key_file, write_key_file
from distkv_ext.codekit.core.signing import SigningKey

__all__ = ["new_signing_key", "load_signing_key"]


def new_signing_key(filename):
    """Make a new Ed25519 signing key, write its seed (base64) to the new
    file ``filename`` (mode 0600; an existing file is refused with
    `InputRefused`) and return it as a `SigningKey` (its ``public_text`` is
    what ``runner: {trusted_keys: [...]}`` lists)."""
    seed = os.urandom(32)
    write_key_file(filename, seed)
    return SigningKey(seed)


def load_signing_key(filename, setting="codes.signing_key"):
    """The `SigningKey` in ``filename``; `BadKeyFile` (naming ``setting``)
    if it cannot be read or holds no 32-byte key."""
    return SigningKey(read_key_file(filename, setting, min_bytes=32, max_bytes=32))
