"""The tool's own RSA key pairs: created, rotated and published as a JWKS, all in the database."""
import base64
import hashlib
import json
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from lti_tool.extensions import db
from lti_tool.models import ToolKey
from lti_tool.models.base import utcnow

KEY_SIZE = 2048


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key_pem: str
    public_key_pem: str


def generate_key_pair() -> tuple[str, dict]:
    """Return a new private key as PEM and its public half as a JWK (kid = RFC 7638 thumbprint)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    thumbprint_input = json.dumps(
        {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    kid = base64.urlsafe_b64encode(hashlib.sha256(thumbprint_input.encode()).digest()).rstrip(b"=").decode()
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return pem, jwk


def _published_keys() -> list[ToolKey]:
    return list(
        db.session.scalars(
            sa.select(ToolKey).order_by(ToolKey.created_at.desc(), ToolKey.id.desc()).limit(2)
        )
    )


def active_key() -> ToolKey | None:
    """Return the key the tool signs with now, if one was made."""
    return db.session.scalars(
        sa.select(ToolKey).where(ToolKey.retired_at.is_(None)).order_by(ToolKey.id.desc()).limit(1)
    ).first()


def ensure_active_key() -> ToolKey:
    """Return the active key, creating the first one when there is none."""
    key = active_key()
    return key if key is not None else rotate_keys()


def rotate_keys() -> ToolKey:
    """Make a new active key; the previous one stays published so tokens it signed still verify."""
    now = utcnow()
    db.session.execute(sa.update(ToolKey).where(ToolKey.retired_at.is_(None)).values(retired_at=now))
    pem, jwk = generate_key_pair()
    key = ToolKey(kid=jwk["kid"], private_key_pem=pem, public_jwk=jwk, created_at=now)
    db.session.add(key)
    db.session.flush()
    return key


def public_jwks() -> dict:
    """Return the JWKS: the active key and the one before it."""
    return {"keys": [k.public_jwk for k in _published_keys()]}


def signing_key() -> SigningKey:
    """Return the active key ready for signing; the tool must have one (see `flask keys rotate`)."""
    key = active_key()
    if key is None:
        raise LookupError("The tool has no signing key yet: run `flask --app lti_tool keys rotate`.")
    public_pem = (
        serialization.load_pem_private_key(key.private_key_pem.encode(), password=None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return SigningKey(kid=key.kid, private_key_pem=key.private_key_pem, public_key_pem=public_pem)
