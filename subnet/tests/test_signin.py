"""Hotkey sign-in: the message format, sr25519 signatures made here with real keypairs, and the challenge's life.

Property tests (hypothesis, derandomized) cover the parser and the verifier on any input: a message written by
`format_message` parses back to the same fields, anything else is `InvalidMessage`, and no signature or hotkey
string makes the verifier raise.
"""

from datetime import UTC, datetime, timedelta

import pytest
from bittensor_wallet import Keypair
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subnet.models import HotkeyChallenge
from subnet.signin import (
    CHALLENGE_LIFETIME,
    InvalidMessage,
    SignInMessage,
    SignInRefused,
    format_message,
    get_hotkey_user,
    is_hotkey_address,
    issue_challenge,
    parse_message,
    parse_signature,
    redeem_challenge,
    verify_signature,
)

PROPERTY = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")
MNEMONIC_KEY = Keypair.create_from_mnemonic(
    "bottom drive obey lake curtain smoke basket hold race lonely fit walk"  # the Substrate dev phrase
)


def sign(keypair: Keypair, text: str, wrap: str = "") -> str:
    data = f"<{wrap}>{text}</{wrap}>" if wrap else text
    return "0x" + keypair.sign(data.encode()).hex()


def issue(keypair: Keypair = ALICE) -> HotkeyChallenge:
    return issue_challenge(
        hotkey=keypair.ss58_address, domain="portal.example", uri="https://portal.example/portal/hotkey", chain_id="c"
    )


# ------------------------------------------------------------------------------------------------ the message

line = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1, max_size=30).filter(
    lambda value: value == value.strip()
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds; the values get UTC below
    max_value=datetime(2999, 1, 1),  # noqa: DTZ001
).map(lambda moment: moment.replace(microsecond=0, tzinfo=UTC))
messages = st.builds(
    SignInMessage,
    domain=line,
    address=line,
    statement=line,
    uri=line,
    chain_id=line,
    nonce=line,
    issued_at=moments,
    expires_at=moments,
    version=line,
)


@PROPERTY
@given(message=messages)
def test_a_formatted_message_parses_back_to_its_fields(message):
    text = format_message(message)

    assert parse_message(text) == message
    assert len(text.split("\n")) == 11


@PROPERTY
@given(text=st.text(max_size=400))
def test_any_other_text_is_an_invalid_message_and_nothing_else(text):
    try:
        parsed = parse_message(text)
    except InvalidMessage:
        return
    assert format_message(parsed) == text


@PROPERTY
@given(message=messages, position=st.integers(min_value=0, max_value=10), junk=st.sampled_from(["x", " ", "\r", "\t"]))
def test_a_message_with_a_line_changed_does_not_parse_to_the_same_fields(message, position, junk):
    lines = format_message(message).split("\n")
    lines[position] += junk
    changed = "\n".join(lines)
    try:
        parsed = parse_message(changed)
    except InvalidMessage:
        return
    assert parsed != message


def test_the_message_names_domain_hotkey_nonce_and_five_minutes():
    issued_at = datetime(2026, 12, 3, 14, 0, 0, tzinfo=UTC)
    text = format_message(
        SignInMessage(
            domain="portal.example",
            address=ALICE.ss58_address,
            statement="Sign in.",
            uri="https://portal.example/portal/hotkey",
            chain_id="bittensor:local:122",
            nonce="0123456789abcdef0123456789abcdef",
            issued_at=issued_at,
            expires_at=issued_at + CHALLENGE_LIFETIME,
        )
    )

    assert text == (
        "portal.example wants you to sign in with your Substrate account:\n"
        "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\n"
        "\n"
        "Sign in.\n"
        "\n"
        "URI: https://portal.example/portal/hotkey\n"
        "Version: 1\n"
        "Chain ID: bittensor:local:122\n"
        "Nonce: 0123456789abcdef0123456789abcdef\n"
        "Issued At: 2026-12-03T14:00:00Z\n"
        "Expiration Time: 2026-12-03T14:05:00Z"
    )


def test_a_field_with_a_newline_cannot_be_written():
    with pytest.raises(InvalidMessage, match="statement must be one non-empty line"):
        format_message(
            SignInMessage(
                domain="d",
                address="a",
                statement="two\nlines",
                uri="u",
                chain_id="c",
                nonce="n",
                issued_at=datetime(2026, 1, 1, tzinfo=UTC),
                expires_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )


# ----------------------------------------------------------------------------------------------- signatures


def test_raw_and_bytes_wrapped_signatures_verify_and_others_do_not():
    text = "portal.example wants you to sign in"

    assert verify_signature(hotkey=ALICE.ss58_address, message=text, signature=ALICE.sign(text.encode())) is True
    wrapped = ALICE.sign(f"<Bytes>{text}</Bytes>".encode())
    assert verify_signature(hotkey=ALICE.ss58_address, message=text, signature=wrapped) is True
    assert verify_signature(hotkey=ALICE.ss58_address, message=text, signature=BOB.sign(text.encode())) is False
    assert verify_signature(hotkey=ALICE.ss58_address, message=text + ".", signature=ALICE.sign(text.encode())) is False
    assert verify_signature(hotkey=BOB.ss58_address, message=text, signature=ALICE.sign(text.encode())) is False


def test_a_mnemonic_keypair_signs_like_any_other():
    text = "hello"

    assert (
        verify_signature(hotkey=MNEMONIC_KEY.ss58_address, message=text, signature=MNEMONIC_KEY.sign(text.encode()))
        is True
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0x" + "ab" * 64, bytes.fromhex("ab" * 64)),
        ("AB" * 64, bytes.fromhex("ab" * 64)),
        ("  0x" + "0f" * 64 + "\n", bytes.fromhex("0f" * 64)),
        ("0x" + "ab" * 63, None),
        ("0x" + "ab" * 65, None),
        ("0x" + "zz" * 64, None),
        ("0X" + "ab" * 64, None),
        (None, None),
        (123, None),
    ],
)
def test_parse_signature(value, expected):
    assert parse_signature(value) == expected


@PROPERTY
@given(hotkey=st.text(max_size=70), signature=st.binary(max_size=80), message=st.text(max_size=50))
def test_the_verifier_answers_false_for_any_hotkey_and_bytes(hotkey, signature, message):
    assert verify_signature(hotkey=hotkey, message=message, signature=signature) is False


@PROPERTY
@given(signature=st.binary(min_size=64, max_size=64))
def test_random_64_bytes_are_not_alices_signature(signature):
    assert verify_signature(hotkey=ALICE.ss58_address, message="m", signature=signature) is False


@PROPERTY
@given(value=st.text(max_size=70))
def test_is_hotkey_address_never_raises(value):
    assert is_hotkey_address(value) in (True, False)


# ------------------------------------------------------------------------------------------------ challenges


@pytest.mark.django_db
def test_a_challenge_is_stored_for_five_minutes_and_its_message_names_the_hotkey():
    challenge = issue()

    message = parse_message(challenge.message)
    assert message.address == ALICE.ss58_address
    assert message.nonce == challenge.nonce
    assert message.domain == "portal.example"
    assert challenge.expires_at - challenge.issued_at == timedelta(minutes=5)
    assert message.expires_at == challenge.expires_at
    assert challenge.used_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("wrap", ["", "Bytes"])
def test_a_signed_challenge_is_redeemed_once(wrap):
    challenge = issue()
    signature = sign(ALICE, challenge.message, wrap)

    redeemed = redeem_challenge(nonce=challenge.nonce, hotkey=ALICE.ss58_address, signature=signature)

    assert redeemed.pk == challenge.pk
    assert HotkeyChallenge.objects.get(pk=challenge.pk).used_at is not None
    with pytest.raises(SignInRefused) as again:
        redeem_challenge(nonce=challenge.nonce, hotkey=ALICE.ss58_address, signature=signature)
    assert again.value.code == "challenge_used"


@pytest.mark.django_db
def test_another_hotkeys_signature_is_refused_and_leaves_the_challenge_usable():
    challenge = issue()

    with pytest.raises(SignInRefused) as refused:
        redeem_challenge(nonce=challenge.nonce, hotkey=ALICE.ss58_address, signature=sign(BOB, challenge.message))

    assert refused.value.code == "bad_signature"
    assert refused.value.status_code == 403
    assert HotkeyChallenge.objects.get(pk=challenge.pk).used_at is None
    redeem_challenge(nonce=challenge.nonce, hotkey=ALICE.ss58_address, signature=sign(ALICE, challenge.message))


@pytest.mark.django_db
def test_bob_cannot_redeem_alices_challenge_even_with_his_own_signature():
    challenge = issue(ALICE)

    with pytest.raises(SignInRefused) as refused:
        redeem_challenge(nonce=challenge.nonce, hotkey=BOB.ss58_address, signature=sign(BOB, challenge.message))

    assert refused.value.code == "hotkey_mismatch"


@pytest.mark.django_db
def test_an_expired_challenge_is_refused():
    challenge = issue()
    HotkeyChallenge.objects.filter(pk=challenge.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(SignInRefused) as refused:
        redeem_challenge(nonce=challenge.nonce, hotkey=ALICE.ss58_address, signature=sign(ALICE, challenge.message))

    assert refused.value.code == "challenge_expired"
    assert "Ask for a new one" in refused.value.message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("nonce", "hotkey", "signature", "code"),
    [
        (None, ALICE.ss58_address, "0x" + "00" * 64, "no_challenge"),
        ("not-a-nonce!", ALICE.ss58_address, "0x" + "00" * 64, "no_challenge"),
        ("feedfacefeedfacefeedfacefeedface", ALICE.ss58_address, "0x" + "00" * 64, "no_challenge"),
        ("ISSUED", "5Grw", "0x" + "00" * 64, "invalid_hotkey"),
        ("ISSUED", ALICE.ss58_address, "0x1234", "invalid_signature_format"),
        ("ISSUED", ALICE.ss58_address, "0x" + "00" * 64, "bad_signature"),
    ],
)
def test_refusals_name_what_went_wrong(nonce, hotkey, signature, code):
    challenge = issue()

    with pytest.raises(SignInRefused) as refused:
        redeem_challenge(nonce=challenge.nonce if nonce == "ISSUED" else nonce, hotkey=hotkey, signature=signature)

    assert refused.value.code == code
    assert HotkeyChallenge.objects.get(pk=challenge.pk).used_at is None


@pytest.mark.django_db
def test_issuing_refuses_a_name_instead_of_an_address_and_prunes_expired_challenges():
    old = issue()
    HotkeyChallenge.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    with pytest.raises(SignInRefused) as refused:
        issue_challenge(hotkey="default", domain="d", uri="u", chain_id="c")
    fresh = issue(BOB)

    assert refused.value.code == "invalid_hotkey"
    assert list(HotkeyChallenge.objects.values_list("pk", flat=True)) == [fresh.pk]


@pytest.mark.django_db
def test_a_hotkey_gets_one_account_without_a_password():
    first = get_hotkey_user(hotkey=ALICE.ss58_address)
    second = get_hotkey_user(hotkey=ALICE.ss58_address)

    assert first.pk == second.pk
    assert first.get_username() == f"hotkey:{ALICE.ss58_address}"
    assert first.has_usable_password() is False
