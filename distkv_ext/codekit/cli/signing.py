"""The code signing key of the command line (``codes: {signing_key: FILE}``)."""

import logging

from distkv_ext.codekit.core.keyfile import loose_mode, read_key_file
from distkv_ext.codekit.core.signing import SigningKey

__all__ = ["signing_key_of", "SETTING"]

logger = logging.getLogger(__name__)

#: Where the configuration names the key file.
SETTING = "codes.signing_key"


def signing_key_of(obj):
    """The `SigningKey` named by ``codes.signing_key`` in the command's
    configuration (``obj.cfg``), or None when none is set.  A file that
    cannot be read or holds no 32-byte key raises `BadKeyFile` (exit
    status 2); a file others can read is warned about."""
    codes = (getattr(obj, "cfg", None) or {}).get("codes") or {}
    filename = codes.get("signing_key")
    if filename is None:
        return None
    key = SigningKey(read_key_file(filename, SETTING, min_bytes=32, max_bytes=32))
    warn = loose_mode(filename)
    if warn:
        logger.warning("%s: %s", SETTING, warn)
    return key
