"""Signed code: Ed25519 signatures over what a procedure or module runs.

A signature covers the entry's kind (procedure or module), its path,
and every field that changes what runs (`digest.RUN_FIELDS`: code, mode,
variables, requires, defaults), in the canonical typed encoding
(`canon`).  So a signed procedure cannot be moved to another name, turned
into a module, or given other defaults without the signature failing;
the one-line ``info`` may change.

The signature is stored in the entry itself, as one more field that
DistKV 0.65's own code reader ignores::

    sig: {alg: ed25519, key: <public key, base64>, sig: <signature, base64>}

`SigningKey` signs (PyNaCl); `verify` checks an entry against a set of
trusted public keys and says why it fails.
"""

import base64
import binascii
import dataclasses
import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from .canon import canonical
from .digest import run_fields
from .errors import NotTrusted

__all__ = [
    "SIG_FIELD",
    "SigningKey",
    "Verdict",
    "verify",
    "check_trusted",
    "key_id",
    "parse_public_key",
    "signed_message",
    "with_signature",
    "carry_signature",
]

#: The field of a stored entry that holds its signature.
SIG_FIELD = "sig"
_ALG = "ed25519"


def signed_message(kind: str, path: Iterable[Any], value: Mapping[str, Any]) -> bytes:
    """The bytes a signature of entry ``value`` (``kind``: "proc" or
    "module") at ``path`` covers."""
    return canonical(["distkv-code signed entry v1", kind, list(path), run_fields(kind, value)])


def key_id(public: bytes) -> str:
    """A short name of a public key for messages: 8 hex digits of its SHA-256."""
    return hashlib.sha256(public).hexdigest()[:8]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_public_key(text: object) -> bytes:
    """A public key given as base64 text (what ``code keygen`` prints) as
    32 bytes; ValueError if it is none."""
    key = _unb64(text)
    if key is None or len(key) != 32:
        raise ValueError(f"{text!r} is not an Ed25519 public key (base64 of 32 bytes)")
    return key


class SigningKey:
    """An Ed25519 signing key (``codes: {signing_key: FILE}``).

    ``SigningKey(seed)`` with the 32-byte seed that the key file holds;
    ``public`` is the public key (bytes), ``public_text`` its base64."""

    def __init__(self, seed: bytes) -> None:
        # lazy: PyNaCl's signing costs ~6 ms at every CLI start; only signing needs it
        import nacl.signing

        if len(seed) != 32:
            raise ValueError(f"an Ed25519 key is 32 bytes, not {len(seed)}")
        self._key = nacl.signing.SigningKey(seed)
        self.public: bytes = bytes(self._key.verify_key)
        self.public_text = _b64(self.public)

    def __repr__(self) -> str:
        return f"<SigningKey {key_id(self.public)}>"  # never the secret

    def sign(self, kind: str, path: Iterable[Any], value: Mapping[str, Any]) -> dict[str, str]:
        """The signature field (a dict, see the module doc) for entry
        ``value`` of ``kind`` at ``path``."""
        sig = self._key.sign(signed_message(kind, path, value)).signature
        return {"alg": _ALG, "key": self.public_text, "sig": _b64(sig)}


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The result of `verify`: ``ok``, and ``key`` (the key id that signed
    it, if the signature is valid) or ``reason`` (why not, in words)."""

    ok: bool
    key: str | None = None
    reason: str = ""


def _check(kind: str, path: Sequence[Any], value: Mapping[str, Any]) -> tuple[bytes | None, str]:
    """(public key that made a valid signature, "") or (None, reason)."""
    # lazy: PyNaCl's signing costs ~6 ms at every CLI start; only checking needs it
    import nacl.exceptions
    import nacl.signing

    sig = value.get(SIG_FIELD)
    if sig is None:
        return None, "unsigned"
    if not isinstance(sig, dict) or sig.get("alg") != _ALG:
        return None, "its signature is not an Ed25519 signature of this project"
    public, signature = _unb64(sig.get("key")), _unb64(sig.get("sig"))
    if public is None or len(public) != 32 or signature is None or len(signature) != 64:
        return None, "its signature is malformed"
    try:
        nacl.signing.VerifyKey(public).verify(signed_message(kind, path, value), signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return None, f"its signature (key {key_id(public)}) does not match its content"
    return public, ""


def verify(kind: str, path: Sequence[Any], value: object, trusted: Collection[bytes]) -> Verdict:
    """Is the stored entry ``value`` of ``kind`` ("proc" or "module") at
    ``path`` signed by one of the ``trusted`` public keys (32 bytes each)?
    Never raises for what is stored."""
    if not isinstance(value, dict):
        return Verdict(False, reason="not an entry")
    try:
        public, reason = _check(kind, path, value)
    except (TypeError, ValueError) as exc:  # a value with no canonical encoding
        return Verdict(False, reason=f"cannot be checked: {exc}")
    if public is None:
        return Verdict(False, reason=reason)
    if public not in trusted:
        return Verdict(False, key=key_id(public), reason=f"signed by key {key_id(public)}, which is not trusted")
    return Verdict(True, key=key_id(public))


def check_trusted(kind: str, path: Sequence[Any], value: object, trusted: Collection[bytes], name: str) -> str:
    """The id of the trusted key that signed the entry; raises `NotTrusted`
    (``not signed by a trusted key``, naming ``name`` and why) if none did."""
    v = verify(kind, path, value, trusted)
    if not v.ok:
        raise NotTrusted(f"{name} is not signed by a trusted key ({v.reason})")
    return v.key or ""


def with_signature(
    kind: str, path: Sequence[Any], value: dict[str, Any], key: SigningKey | None, carry: Iterable[object] = ()
) -> dict[str, Any]:
    """``value`` (a new entry) with its signature: made with ``key`` if
    given, else the first signature of ``carry`` (signatures of earlier
    versions) that is still valid for the new content, else none."""
    value = {k: v for k, v in value.items() if k != SIG_FIELD}
    if key is not None:
        value[SIG_FIELD] = key.sign(kind, path, value)
        return value
    sig = carry_signature(kind, path, value, carry)
    if sig is not None:
        value[SIG_FIELD] = sig
    return value


def carry_signature(kind: str, path: Sequence[Any], value: Mapping[str, Any], carry: Iterable[object]) -> Any:
    """The first signature in ``carry`` that is a valid signature of
    ``value`` (only ``info`` changed, say), or None."""
    for sig in carry:
        if sig is None:
            continue
        try:
            public, _ = _check(kind, path, {**value, SIG_FIELD: sig})
        except (TypeError, ValueError):
            continue
        if public is not None:
            return sig
    return None
