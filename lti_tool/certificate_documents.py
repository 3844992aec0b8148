"""A certificate's documents, built from plain data: the printable PDF and the Open Badges 3.0 credential.

Nothing here touches the database or Flask: callers gather a `CertificateData`, pass the tool's signing key
(see `lti_tool.lti.keys`) and get bytes, dicts and strings back.

The credential is an Open Badges 3.0 `OpenBadgeCredential` (VC Data Model 2.0 form: `validFrom`, the v2
context) secured as a VC-JWT: an RS256 JWS whose `vc` claim is the credential, with `iss`, `jti`, `nbf` and
`sub` mirroring the credential's issuer, id, validFrom and subject.
"""
from __future__ import annotations

import hashlib
import io
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm
from reportlab.lib import colors
from reportlab.lib.pagesizes import landscape, letter
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Table, TableStyle

from lti_tool.services.rules import format_hours

#: DejaVu Sans prints names in most of the world's scripts (Vietnamese, Greek, Cyrillic...); the built-in Helvetica
#: only prints Latin-1. Debian's fonts-dejavu-core puts it here; CERTIFICATE_FONT_DIR can point elsewhere.
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu",)
_DEJAVU = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "italic": "DejaVuSans-Oblique.ttf"}
_HELVETICA = {"regular": "Helvetica", "bold": "Helvetica-Bold", "italic": "Helvetica-Oblique"}
_fonts: dict[str, str] | None = None


def certificate_fonts() -> dict[str, str]:
    """Return the font names for regular, bold and italic text: DejaVu Sans when installed, else Helvetica."""
    global _fonts
    if _fonts is None:
        import os
        from pathlib import Path

        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        directories = [os.environ["CERTIFICATE_FONT_DIR"]] if os.environ.get("CERTIFICATE_FONT_DIR") else []
        for directory in [*directories, *FONT_DIRS]:
            paths = {style: Path(directory) / name for style, name in _DEJAVU.items()}
            if all(path.is_file() for path in paths.values()):
                for style, path in paths.items():
                    pdfmetrics.registerFont(TTFont(f"Certificate-{style}", str(path)))
                _fonts = {style: f"Certificate-{style}" for style in _DEJAVU}
                break
        else:
            _fonts = dict(_HELVETICA)
    return _fonts


VC_CONTEXT_V2 = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
OB_SCHEMA_URL = "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"
JWT_ALGORITHM = "RS256"
# Clock skew allowed between the signer and whoever verifies (nbf / iat checks).
VERIFY_LEEWAY_SECONDS = 300


@dataclass(frozen=True)
class CertificateData:
    """Everything the certificate documents show, as plain values."""

    number: str
    holder_name: str
    program_name: str
    issued_at: datetime
    hours_by_group: tuple[tuple[str, float], ...]
    total_hours: float
    verification_url: str
    issuer_name: str
    issuer_url: str
    contact_email: str
    holder_email: str | None = None

    def __post_init__(self) -> None:
        if self.issued_at.tzinfo is None or self.issued_at.utcoffset() is None:
            raise ValueError("CertificateData.issued_at must be a timezone-aware datetime")


# ---------------------------------------------------------------------------------------------- formatting


def format_date(moment: datetime) -> str:
    """The date as printed on the certificate, e.g. "November 25, 2026" (in the datetime's own zone)."""
    return f"{moment:%B} {moment.day}, {moment.year}"


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------- PDF

PAGE_WIDTH, PAGE_HEIGHT = landscape(letter)  # 792 x 612 points
INK = colors.HexColor("#1f2a44")
ACCENT = colors.HexColor("#8a6d1d")
MUTED = colors.HexColor("#555555")
RULE = colors.HexColor("#b9b9b9")


def _fit_font_size(text: str, font: str, size: float, max_width: float, minimum: float = 7) -> float:
    while size > minimum and stringWidth(text, font, size) > max_width:
        size -= 0.5
    return size


def _centered(canvas: Canvas, text: str, y: float, font: str, size: float, max_width: float, color=INK) -> None:
    size = _fit_font_size(text, font, size, max_width)
    canvas.setFont(font, size)
    canvas.setFillColor(color)
    canvas.drawCentredString(PAGE_WIDTH / 2, y, text)


def _hours_table(data: CertificateData, max_height: float) -> Table:
    rows = [["Requirement", "Hours"]]
    rows += [[title, format_hours(hours)] for title, hours in data.hours_by_group]
    rows.append(["Total", format_hours(data.total_hours)])
    # Shrink the type when a program has many requirement groups, so the table keeps to its band.
    font_size = max(6.0, min(10.0, max_height / (len(rows) * 1.75)))
    padding = max(1.0, font_size * 0.25)
    title_width = 330
    wrapped = []
    for index, (title, hours) in enumerate(rows):
        if 0 < index < len(rows) - 1:
            title = "\n".join(simpleSplit(title, certificate_fonts()["regular"], font_size, title_width - 12)) or title
        wrapped.append([title, hours])
    table = Table(wrapped, colWidths=[title_width, 80], hAlign="CENTER")
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), certificate_fonts()["regular"], font_size),
                ("FONT", (0, 0), (-1, 0), certificate_fonts()["bold"], font_size),
                ("FONT", (0, -1), (-1, -1), certificate_fonts()["bold"], font_size),
                ("TEXTCOLOR", (0, 0), (-1, -1), INK),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), padding),
                ("BOTTOMPADDING", (0, 0), (-1, -1), padding),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
                ("LINEBELOW", (0, 1), (-1, -3), 0.3, RULE),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, INK),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef0f5")),
            ]
        )
    )
    return table


def render_pdf(data: CertificateData) -> bytes:
    """The printable certificate: one landscape Letter page, in DejaVu Sans (or Helvetica when it is missing)."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(PAGE_WIDTH, PAGE_HEIGHT), pageCompression=1)
    canvas.setTitle(f"{data.program_name}: certificate {data.number} for {data.holder_name}")
    canvas.setAuthor(data.issuer_name)
    canvas.setSubject(f"Certificate of completion, {data.program_name}")
    canvas.setCreator(data.issuer_name)
    canvas.setKeywords(f"certificate, {data.number}")  # what reportlab makes of the list it also takes

    # Border: a heavy outer frame and a fine inner one.
    canvas.setStrokeColor(INK)
    canvas.setLineWidth(4)
    canvas.rect(22, 22, PAGE_WIDTH - 44, PAGE_HEIGHT - 44)
    canvas.setStrokeColor(ACCENT)
    canvas.setLineWidth(1)
    canvas.rect(32, 32, PAGE_WIDTH - 64, PAGE_HEIGHT - 64)

    text_width = PAGE_WIDTH - 140
    same_name = data.issuer_name.strip().casefold() == data.program_name.strip().casefold()
    overline = "Certificate of Completion" if same_name else data.issuer_name
    _centered(canvas, overline.upper(), 548, certificate_fonts()["regular"], 11, text_width, ACCENT)
    _centered(canvas, data.program_name, 506, certificate_fonts()["bold"], 30, text_width)
    _centered(canvas, "This certifies that", 466, certificate_fonts()["italic"], 14, text_width, MUTED)
    _centered(canvas, data.holder_name, 424, certificate_fonts()["bold"], 34, text_width)
    canvas.setStrokeColor(ACCENT)
    canvas.setLineWidth(0.8)
    canvas.line(PAGE_WIDTH / 2 - 200, 412, PAGE_WIDTH / 2 + 200, 412)

    total = format_hours(data.total_hours)
    sentence = (
        f"has completed every requirement of the {data.program_name}, "
        f"{total} {'hour' if total == '1' else 'hours'} of training in all."
    )
    canvas.setFont(certificate_fonts()["regular"], 12.5)
    canvas.setFillColor(INK)
    y = 388
    for line in simpleSplit(sentence, certificate_fonts()["regular"], 12.5, text_width - 60)[:3]:
        canvas.drawCentredString(PAGE_WIDTH / 2, y, line)
        y -= 16

    # Hours by requirement, in the band between the sentence and the signature line.
    table_top, table_bottom = y - 6, 128
    table = _hours_table(data, table_top - table_bottom)
    width, height = table.wrapOn(canvas, PAGE_WIDTH, table_top - table_bottom)
    slack = max(0.0, (table_top - table_bottom - height) / 2)
    table.drawOn(canvas, (PAGE_WIDTH - width) / 2, table_top - height - slack)

    # Date (left) and certificate number (right), each over a rule with a caption.
    for centre, value, caption in (
        (PAGE_WIDTH * 0.27, format_date(data.issued_at), "Date of issue"),
        (PAGE_WIDTH * 0.73, data.number, "Certificate number"),
    ):
        canvas.setFillColor(INK)
        canvas.setFont(certificate_fonts()["bold"], _fit_font_size(value, certificate_fonts()["bold"], 13, 220))
        canvas.drawCentredString(centre, 96, value)
        canvas.setStrokeColor(INK)
        canvas.setLineWidth(0.6)
        canvas.line(centre - 110, 90, centre + 110, 90)
        canvas.setFont(certificate_fonts()["regular"], 9)
        canvas.setFillColor(MUTED)
        canvas.drawCentredString(centre, 78, caption)

    _centered(canvas, f"Verify at {data.verification_url}", 48, certificate_fonts()["regular"], 9.5, text_width, MUTED)
    canvas.linkURL(data.verification_url, (70, 42, PAGE_WIDTH - 70, 60), relative=0)

    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# ------------------------------------------------------------------------------------- Open Badges 3.0


def hashed_identity(value: str, salt: str, identity_type: str) -> dict:
    """An OB 3.0 IdentityObject carrying sha256(value + salt), hex, as `sha256$<hex>`."""
    digest = hashlib.sha256((value + salt).encode("utf-8")).hexdigest()
    return {
        "type": "IdentityObject",
        "identityType": identity_type,
        "hashed": True,
        "salt": salt,
        "identityHash": f"sha256${digest}",
    }


#: Bytes of random salt per credential: every download gets its own, so no table of precomputed hashes helps.
SALT_BYTES = 32


def certificate_number_identity(number: str) -> dict:
    """An OB 3.0 IdentityObject naming the certificate number, in the clear (it is printed and public)."""
    return {"type": "IdentityObject", "identityType": "identifier", "hashed": False, "identityHash": number}


def open_badge_credential(
    data: CertificateData,
    *,
    credential_id: str,
    achievement_id: str,
    issuer_id: str,
    criteria: str,
    description: str,
    salt: str | None = None,
    identify_holder: bool = True,
) -> dict:
    """The certificate as an Open Badges 3.0 `OpenBadgeCredential` (unsigned; see `sign_credential`).

    The subject is always identified by the certificate number (public: it is on the PDF and `/verify`). With
    `identify_holder` (the member's own signed copy) it also carries OB 3.0's hashed identity: SHA-256 of the
    email (trimmed, lower-cased) with a long random salt made for this credential, so a verifier the member
    gives it to, who knows the email, can check it; without an email, the name the certificate shows is hashed
    instead. The copy anyone can fetch by number (`identify_holder=False`) carries no hash of the holder at all,
    so nobody can collect hashes to test guessed addresses against.
    """
    identities = [certificate_number_identity(data.number)]
    if identify_holder:
        salt = salt if salt is not None else secrets.token_hex(SALT_BYTES)
        if data.holder_email:
            identities.insert(0, hashed_identity(data.holder_email.strip().lower(), salt, "emailAddress"))
        else:
            identities.insert(0, hashed_identity(data.holder_name.strip(), salt, "name"))
    total = float(data.total_hours)
    return {
        "@context": [VC_CONTEXT_V2, OB_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": data.program_name,
        "issuer": {
            "id": issuer_id,
            "type": ["Profile"],
            "name": data.issuer_name,
            "url": data.issuer_url,
            "email": data.contact_email,
        },
        "validFrom": _iso_utc(data.issued_at),
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": identities,
            "achievement": {
                "id": achievement_id,
                "type": ["Achievement"],
                "achievementType": "Certificate",
                "name": data.program_name,
                "description": description,
                "criteria": {"narrative": criteria},
                "creditsAvailable": total,
            },
            "creditsEarned": total,
        },
        "credentialSchema": [{"id": OB_SCHEMA_URL, "type": "1EdTechJsonSchemaValidator2019"}],
    }


def _issuer_id(credential: dict) -> str:
    issuer = credential.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if not isinstance(issuer_id, str) or not issuer_id:
        raise ValueError("The credential has no issuer id")
    return issuer_id


def sign_credential(credential: dict, *, kid: str, private_key_pem: str) -> str:
    """Secure the credential as a VC-JWT (RS256, header {alg, typ: JWT, kid})."""
    credential_id = credential.get("id")
    if not isinstance(credential_id, str) or not credential_id:
        raise ValueError("The credential has no id")
    try:
        valid_from = datetime.fromisoformat(credential["validFrom"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError("The credential has no valid validFrom date-time") from exc
    if valid_from.tzinfo is None:
        raise ValueError("The credential's validFrom has no timezone")
    subject = credential.get("credentialSubject")
    subject_id = subject.get("id") if isinstance(subject, dict) else None
    claims = {
        "iss": _issuer_id(credential),
        "jti": credential_id,
        "sub": subject_id or credential_id,
        "nbf": int(valid_from.timestamp()),
        "iat": int(time.time()),
        "vc": credential,
    }
    return jwt.encode(claims, private_key_pem, algorithm=JWT_ALGORITHM, headers={"kid": kid, "typ": "JWT"})


def verify_credential(token: str, jwks: dict) -> dict:
    """Check a VC-JWT against a JWKS and return its `vc` claim.

    Only RS256 is accepted (never `none`, never an HMAC with the public key); the key is chosen by `kid`.
    Raises ValueError saying why the credential was refused.
    """
    if not isinstance(token, str) or token.count(".") != 2:
        raise ValueError("Not a compact JWS: a VC-JWT has three dot-separated parts")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise ValueError(f"Unreadable VC-JWT header: {exc}") from exc
    alg = header.get("alg")
    if alg != JWT_ALGORITHM:
        raise ValueError(f"Refused signing algorithm {alg!r}: only {JWT_ALGORITHM} is accepted")
    kid = header.get("kid")
    if not kid:
        raise ValueError("The VC-JWT header has no kid")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    matches = [k for k in keys or [] if isinstance(k, dict) and k.get("kid") == kid]
    if not matches:
        raise ValueError(f"No key with kid {kid!r} in the issuer's JWKS")
    jwk = matches[0]
    if (
        jwk.get("kty") != "RSA"
        or jwk.get("alg", JWT_ALGORITHM) != JWT_ALGORITHM
        or jwk.get("use", "sig") != "sig"
    ):
        raise ValueError(f"The JWKS key {kid!r} is not an RS256 signing key")
    try:
        public_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise ValueError(f"The JWKS key {kid!r} is unusable: {exc}") from exc
    if not isinstance(public_key, RSAPublicKey):  # a JWK with private parameters loads as a private key
        raise ValueError(f"The JWKS key {kid!r} is not a public key")
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["iss", "jti", "nbf", "iat"], "verify_aud": False},
            leeway=VERIFY_LEEWAY_SECONDS,
        )
    except jwt.InvalidSignatureError as exc:
        raise ValueError("The VC-JWT signature does not verify with the issuer's key") from exc
    except jwt.ImmatureSignatureError as exc:
        raise ValueError(f"The credential is not valid yet: {exc}") from exc
    except jwt.ExpiredSignatureError as exc:
        raise ValueError("The credential has expired") from exc
    except jwt.PyJWTError as exc:
        raise ValueError(f"The VC-JWT was refused: {exc}") from exc

    credential = claims.get("vc")
    if not isinstance(credential, dict):
        raise ValueError("The VC-JWT has no vc claim holding a credential")
    if claims["iss"] != _issuer_id(credential):
        raise ValueError("The VC-JWT iss does not match the credential's issuer id")
    if claims["jti"] != credential.get("id"):
        raise ValueError("The VC-JWT jti does not match the credential id")
    return credential
