"""Signing in to the portal with a hotkey: a Sign-In-with-Substrate style message, single use, for 5 minutes.

The flow (STOREFRONT.md §6): `issue_challenge` stores a `HotkeyChallenge` whose message names the domain, the
hotkey, a statement, a server nonce, when it was issued and when it expires; the person signs the exact
message with the hotkey (`btcli wallet sign --use-hotkey`, `wallet.hotkey.sign(message)`, or a browser
extension's `signRaw`, which signs the message wrapped as `<Bytes>...</Bytes>`); `redeem_challenge` checks the
sr25519 signature with bittensor-wallet's `Keypair` against the raw message, then the wrapped one, and marks
the challenge used. What the hotkey may see comes from the chain afterwards, never from the message.
"""

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from bittensor_wallet import Keypair
from bittensor_wallet.utils import is_valid_ss58_address
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from subnet.models import HotkeyChallenge

__all__ = [
    "CHALLENGE_LIFETIME",
    "InvalidMessage",
    "SignInMessage",
    "SignInRefused",
    "format_message",
    "get_hotkey_user",
    "is_hotkey_address",
    "issue_challenge",
    "parse_message",
    "parse_signature",
    "redeem_challenge",
    "verify_signature",
]

CHALLENGE_LIFETIME: Final = timedelta(minutes=5)
STATEMENT: Final = (
    "Sign in to the Bitrecs portal with this hotkey. Signing this message costs nothing and moves no funds."
)
MESSAGE_VERSION: Final = "1"
# What polkadot.js `signRaw` wraps around the data it signs (`<Bytes>`; older extensions `<RawBytes>`).
WRAPPINGS: Final = (("", ""), ("<Bytes>", "</Bytes>"), ("<RawBytes>", "</RawBytes>"))
MAX_MESSAGE_CHARS: Final = 2_000
# A hotkey's portal account is the user named "hotkey:<ss58>".
HOTKEY_USERNAME_PREFIX: Final = "hotkey:"
_HEADER_SUFFIX: Final = " wants you to sign in with your Substrate account:"
_SIGNATURE: Final = re.compile(r"(?:0x)?([0-9a-fA-F]{128})")
_FIELDS: Final = ("URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time")
_NONCE: Final = re.compile(r"[A-Za-z0-9]{16,64}")
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_LINE: Final = re.compile(r"[^\r\n]*")


class InvalidMessage(ValueError):
    """Text that is not a sign-in message of the shape `format_message` writes."""


class SignInRefused(Exception):
    """A sign-in that must not start a session: `code` for programs, `message` for the person (a 403)."""

    status_code = 403

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignInMessage:
    """The fields of a sign-in message; times are aware UTC datetimes to the second."""

    domain: str
    address: str
    statement: str
    uri: str
    chain_id: str
    nonce: str
    issued_at: datetime
    expires_at: datetime
    version: str = MESSAGE_VERSION


def _single_line(value: str, name: str) -> str:
    if not value or _LINE.fullmatch(value) is None or value != value.strip():
        raise InvalidMessage(f"{name} must be one non-empty line without surrounding spaces")
    return value


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(_TIME_FORMAT)


def format_message(message: SignInMessage) -> str:
    """The text a person signs: EIP-4361's layout for a Substrate account (what Sign-In with Substrate uses)."""
    for name in ("domain", "address", "statement", "uri", "chain_id", "nonce", "version"):
        _single_line(getattr(message, name), name)
    lines = [
        f"{message.domain}{_HEADER_SUFFIX}",
        message.address,
        "",
        message.statement,
        "",
        f"URI: {message.uri}",
        f"Version: {message.version}",
        f"Chain ID: {message.chain_id}",
        f"Nonce: {message.nonce}",
        f"Issued At: {_time(message.issued_at)}",
        f"Expiration Time: {_time(message.expires_at)}",
    ]
    return "\n".join(lines)


def _parse_time(value: str, name: str) -> datetime:
    try:
        return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidMessage(f"{name} is not a time like 2026-01-31T12:00:00Z") from None


def parse_message(text: str) -> SignInMessage:
    """The fields of a message `format_message` wrote; `InvalidMessage` for any other text."""
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
        raise InvalidMessage("a sign-in message is text of at most 2,000 characters")
    lines = text.split("\n")
    if len(lines) != 5 + len(_FIELDS) or lines[2] != "" or lines[4] != "":
        raise InvalidMessage("a sign-in message has 11 lines: header, address, blank, statement, blank, 6 fields")
    if not lines[0].endswith(_HEADER_SUFFIX):
        raise InvalidMessage("the first line must say who asks you to sign in")
    domain = _single_line(lines[0][: -len(_HEADER_SUFFIX)], "domain")
    values = {}
    for line, name in zip(lines[5:], _FIELDS, strict=True):
        prefix = f"{name}: "
        if not line.startswith(prefix):
            raise InvalidMessage(f"expected the line {prefix!r}")
        values[name] = _single_line(line[len(prefix) :], name)
    return SignInMessage(
        domain=domain,
        address=_single_line(lines[1], "address"),
        statement=_single_line(lines[3], "statement"),
        uri=values["URI"],
        version=values["Version"],
        chain_id=values["Chain ID"],
        nonce=values["Nonce"],
        issued_at=_parse_time(values["Issued At"], "Issued At"),
        expires_at=_parse_time(values["Expiration Time"], "Expiration Time"),
    )


def is_hotkey_address(value: object) -> bool:
    """Whether `value` is an SS58 address (what a hotkey is written as)."""
    return isinstance(value, str) and 40 <= len(value) <= 64 and bool(is_valid_ss58_address(value))


def parse_signature(value: object) -> bytes | None:
    """The 64 bytes of a signature written as 128 hex characters, with or without "0x"; None for anything else."""
    if not isinstance(value, str):
        return None
    match = _SIGNATURE.fullmatch(value.strip())
    return bytes.fromhex(match.group(1)) if match else None


def verify_signature(*, hotkey: str, message: str, signature: bytes) -> bool:
    """Whether `signature` is the hotkey's sr25519 signature of `message`, raw or wrapped as `signRaw` wraps it."""
    if not is_hotkey_address(hotkey) or len(signature) != 64:
        return False
    keypair = Keypair(ss58_address=hotkey)
    for opening, closing in WRAPPINGS:
        try:
            if keypair.verify(f"{opening}{message}{closing}".encode(), signature):
                return True
        except ValueError:  # bytes that are not a signature at all (bad point encoding)
            return False
    return False


def _address(hotkey: object) -> str:
    if isinstance(hotkey, str) and is_hotkey_address(hotkey):
        return hotkey
    raise SignInRefused(
        "invalid_hotkey",
        "That is not a hotkey address. Paste your hotkey's SS58 address (it starts with 5 and has 48 characters; "
        "`btcli wallet overview` shows it), not its name or the coldkey's mnemonic.",
    )


def issue_challenge(
    *, hotkey: str, domain: str, uri: str, chain_id: str, replaces: str | None = None
) -> HotkeyChallenge:
    """Store a new sign-in message for `hotkey`, valid for 5 minutes; deletes expired challenges and the unused
    challenge `replaces` (the nonce this browser held before), so one browser holds at most one."""
    hotkey = _address(hotkey)
    now = timezone.now().replace(microsecond=0)
    HotkeyChallenge.objects.filter(expires_at__lt=now).delete()
    if replaces:
        HotkeyChallenge.objects.filter(nonce=replaces, used_at__isnull=True).delete()
    nonce = secrets.token_hex(16)
    text = format_message(
        SignInMessage(
            domain=domain,
            address=hotkey,
            statement=STATEMENT,
            uri=uri,
            chain_id=chain_id,
            nonce=nonce,
            issued_at=now,
            expires_at=now + CHALLENGE_LIFETIME,
        )
    )
    return HotkeyChallenge.objects.create(
        hotkey=hotkey, nonce=nonce, message=text, issued_at=now, expires_at=now + CHALLENGE_LIFETIME
    )


def redeem_challenge(*, nonce: str | None, hotkey: object, signature: object) -> HotkeyChallenge:
    """Check the signature of the challenge `nonce` and mark it used; `SignInRefused` says what went wrong."""
    hotkey = _address(hotkey)
    challenge = HotkeyChallenge.objects.filter(nonce=nonce).first() if nonce and _NONCE.fullmatch(nonce) else None
    if challenge is None:
        raise SignInRefused(
            "no_challenge", "This browser has no sign-in message waiting. Ask for a message, sign it, then paste it."
        )
    if challenge.hotkey != hotkey:
        raise SignInRefused(
            "hotkey_mismatch",
            f"The message was issued to hotkey {challenge.hotkey}, not {hotkey}. Ask for a message for your hotkey.",
        )
    if challenge.used_at is not None:
        raise SignInRefused("challenge_used", "This message was already used to sign in. Ask for a new one.")
    now = timezone.now()
    if now >= challenge.expires_at:
        raise SignInRefused(
            "challenge_expired",
            f"This message expired at {_time(challenge.expires_at)}. Ask for a new one and sign it within 5 minutes.",
        )
    raw = parse_signature(signature)
    if raw is None:
        raise SignInRefused(
            "invalid_signature_format",
            "A signature is 0x followed by 128 hexadecimal characters (64 bytes), as `btcli wallet sign` prints it.",
        )
    if not verify_signature(hotkey=hotkey, message=challenge.message, signature=raw):
        raise SignInRefused(
            "bad_signature",
            f"The signature does not match this message and hotkey {hotkey}. Sign the exact message, all 11 lines, "
            "with that hotkey (btcli: --use-hotkey; a coldkey's signature does not count).",
        )
    with transaction.atomic():
        if not HotkeyChallenge.objects.filter(pk=challenge.pk, used_at__isnull=True).update(used_at=now):
            raise SignInRefused("challenge_used", "This message was already used to sign in. Ask for a new one.")
    challenge.used_at = now
    return challenge


def get_hotkey_user(*, hotkey: str) -> User:
    """The portal account of a signed-in hotkey (created on its first sign-in; no password, no stores)."""
    user, created = User.objects.get_or_create(username=f"{HOTKEY_USERNAME_PREFIX}{_address(hotkey)}")
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user
