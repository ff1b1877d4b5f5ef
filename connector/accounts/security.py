"""Secrets, keys and passwords.

* Webhook keys and session tokens carry 256 bits of entropy, so a single
  SHA-256 is enough to store them; comparison is constant-time.
* Passwords are hashed with argon2id (argon2-cffi defaults).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so that
# "unknown user" and "wrong password" take the same time.
_DUMMY_HASH = _hasher.hash("not-a-password")


def new_secret() -> str:
    """A URL-safe secret with 32 bytes of entropy."""
    return secrets.token_urlsafe(32)


def new_id(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_matches(presented_hash: str, stored_hash: str | None) -> bool:
    """Constant-time equality of a presented secret's `hash_secret` and a stored one."""
    if not stored_hash:
        return False
    return hmac.compare_digest(presented_hash, stored_hash)


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time equality of two texts, any texts (a lone surrogate included)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"),
                               b.encode("utf-8", "surrogatepass"))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, stored_hash: str | None) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False
