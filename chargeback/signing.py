"""Signed usage events: a collector signs with its own key, the stream worker checks the key
belongs to the municipality the event bills, so that a member cannot bill another.

The signature is HMAC-SHA256 over the event's canonical JSON (all attributes but ``signature``;
keys sorted, no whitespace, UTF-8), carried in two CloudEvents extension attributes: ``keyid``
names the key and ``signature`` holds the hex digest. A key registry binds each key id to one
municipality and its secret; secrets come from the environment or from secrets files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chargeback import yamlfile
from chargeback.errors import UserError

SIGNATURE, KEY_ID = "signature", "keyid"


class SigningError(UserError):
    """A key or the key registry cannot be used."""

    code = "signing.invalid"


def canonical(event: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: the event without its signature, keys sorted, no whitespace."""
    body = {k: v for k, v in event.items() if k != SIGNATURE}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(event: dict[str, Any], key_id: str, secret: bytes) -> dict[str, Any]:
    """The event with ``keyid`` and ``signature`` set."""
    signed = {**event, KEY_ID: key_id}
    signed[SIGNATURE] = hmac.new(secret, canonical(signed), hashlib.sha256).hexdigest()
    return signed


def signed_json(event: Mapping[str, Any], key_id: str, secret: bytes) -> bytes:
    """The JSON of ``sign(event, key_id, secret)``: the signed canonical form, then the signature.

    It serialises the event once, where signing and then encoding the result would do it twice.
    """
    body = canonical({**event, KEY_ID: key_id})
    signature = hmac.digest(secret, body, "sha256").hex()
    return body[:-1] + f',"{SIGNATURE}":"{signature}"}}'.encode()  # body is a non-empty object


@dataclass(frozen=True)
class Key:
    """A collector's key: which municipality it may bill for, and its secret."""

    municipality: str
    secret: bytes


class _KeyEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    municipality: str = Field(pattern=r"^[0-9]{1,8}$")
    secret_env: str | None = None
    secret_file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _KeyEntry:
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError("give exactly one of secret_env and secret_file")
        return self


class _Registry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: dict[str, _KeyEntry]


def read_secret(env_name: str | None, file: Path | None, environ: Mapping[str, str], what: str) -> bytes:
    """A secret from an environment variable or a secrets file; a clear error if it is missing."""
    if env_name is not None:
        value = environ.get(env_name, "")
        if not value:
            raise SigningError(f"{what}: environment variable {env_name} is not set")
        return value.encode()
    assert file is not None
    try:
        value = file.read_text().strip()
    except OSError as exc:
        raise SigningError(f"{what}: cannot read {file}: {exc.strerror}") from exc
    if not value:
        raise SigningError(f"{what}: {file} is empty")
    return value.encode()


def load_registry(path: Path, environ: Mapping[str, str]) -> dict[str, Key]:
    """The key registry: key id -> municipality and secret."""
    try:
        raw = _Registry.model_validate(yamlfile.load_plain(path) or {})
    except yamlfile.YamlFileError as exc:
        raise SigningError(str(exc).replace("cannot read the file", "cannot read the key registry")) from exc
    except ValidationError as exc:
        raise SigningError(f"{path}: {exc}") from exc
    return {
        key_id: Key(
            entry.municipality, read_secret(entry.secret_env, entry.secret_file, environ, f"key {key_id}")
        )
        for key_id, entry in raw.keys.items()
    }


def verify(raw: bytes, municipality: str, registry: Mapping[str, Key]) -> str | None:
    """None when the event is signed with a known key of ``municipality``; else the reason."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return "bad JSON"
    key_id, signature = doc.get(KEY_ID), doc.get(SIGNATURE)
    if not isinstance(key_id, str) or not isinstance(signature, str):
        return "unsigned event: keyid and signature are required"
    key = registry.get(key_id)
    if key is None:
        return f"unknown signing key {key_id}"
    expected = hmac.new(key.secret, canonical(doc), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return f"bad signature for key {key_id}"
    if key.municipality != municipality:
        return f"key {key_id} belongs to municipality {key.municipality}, not {municipality}"
    return None
