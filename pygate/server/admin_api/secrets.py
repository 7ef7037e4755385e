"""Secrets in the admin API: write-only, read back as keyed fingerprints.

Every answer (entity reads, write answers, `GET /config`, the audit log) shows a
secret field (pygate/config/secrets.py) as "sha256:<12 hex>": the first 12 hex digits
of HMAC-SHA256 under a random key kept in the admin state. Keyed, so a fingerprint of
a weak basic-auth password cannot be brute-forced offline from an export; the key
never leaves the state file.

A write may name a secret by its fingerprint, meaning "keep the secret I already
have with this fingerprint". So an export imports again without losing a key, and a
GET-modify-PUT keeps the keys it did not touch. A fingerprint that matches no current
secret is refused, naming the field (it cannot be turned back into a secret). Error
messages are scrubbed of every secret of the document they are about.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from pygate.config.paths import FieldPath
from pygate.config.secrets import FINGERPRINT, map_secrets, secrets_in
from pygate.server.admin_api.document import KINDS, Entities
from pygate.server.admin_api.errors import invalid, problem

REDACTED = "***"


class Fingerprints:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def of(self, secret: str) -> str:
        digest = hmac.new(self._key, str(secret).encode(), hashlib.sha256).hexdigest()
        return "sha256:" + digest[:12]

    def matches(self, secret: str, presented: str) -> bool:
        """`presented` is `secret` itself or its fingerprint."""
        return hmac.compare_digest(secret, presented) or self.of(secret) == presented

    def redact(self, entities: Entities) -> Entities:
        """The document as the API shows it: every secret replaced by its fingerprint."""
        return {section: [self.redact_one(section, item) for item in entities.get(section, [])]
                for section in KINDS}  # fmt: skip

    def redact_one(self, section: str, entity: Any) -> Any:
        def shown(value: Any, _path: FieldPath) -> Any:
            return self.of(value) if isinstance(value, str) else REDACTED

        return map_secrets(entity, KINDS[section][1], shown, (section,))

    def resolve(self, after: Entities, before: Entities) -> Entities:
        """`after` with each fingerprint replaced by the secret of `before` that has it.

        Raises ApiError 400 naming every fingerprint that matches no secret."""
        known = {self.of(secret): secret for secret in all_secrets(before)}
        unknown: list[dict[str, str]] = []

        def real(value: Any, path: FieldPath) -> Any:
            if not isinstance(value, str) or not FINGERPRINT.match(value):
                return value
            if value in known:
                return known[value]
            unknown.append(problem(path, f"unknown fingerprint {value}: no secret of this "
                                         "gateway has it; give the secret itself"))  # fmt: skip
            return value

        resolved = {
            section: [
                map_secrets(item, schema, real, (section, index))
                for index, item in enumerate(after.get(section, []))
            ]
            for section, (_, schema) in KINDS.items()
        }
        if unknown:
            raise invalid(unknown)
        return resolved


def all_secrets(entities: Entities) -> list[str]:
    return [
        value
        for section, (_, schema) in KINDS.items()
        for item in entities.get(section, [])
        for _, value in secrets_in(item, schema)
    ]


def scrub(body: Any, secrets: list[str]) -> Any:
    """`body` (an error answer) with every occurrence of a secret blanked out."""
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not ordered:
        return body

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for secret in ordered:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return clean(body)
