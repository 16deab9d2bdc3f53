"""sciplat/identity/passwords.py: argon2id hashes."""

from __future__ import annotations

import pytest

from sciplat.identity.passwords import hash_password, verify_password


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse")


def test_hash_is_argon2id(stored):
    assert stored.startswith("$argon2id$v=19$")
    assert "correct horse" not in stored


def test_hashes_are_salted(stored):
    assert hash_password("correct horse") != stored


def test_verify_right_password(stored):
    assert verify_password(stored, "correct horse") is True


@pytest.mark.parametrize("password", ["", "correct horse ", "Correct horse", "battery"])
def test_verify_wrong_password(stored, password):
    assert verify_password(stored, password) is False


@pytest.mark.parametrize("password", ["", "x", "sciplat-no-such-user"])
def test_missing_hash_never_matches(password):
    # including the password of the dummy hash used to equalise timing
    assert verify_password(None, password) is False


@pytest.mark.parametrize("password", ["", "x"])
def test_empty_hash_does_not_match(password):
    assert verify_password("", password) is False


def test_empty_hash_does_not_match_the_dummy_password():
    assert verify_password("", "sciplat-no-such-user") is False


@pytest.mark.parametrize("garbage", ["not a hash", "$argon2id$v=19$broken", "$2b$12$abcdefghijk"])
def test_malformed_hash_does_not_match(garbage):
    assert verify_password(garbage, "not a hash") is False


def test_unicode_password():
    assert verify_password(hash_password("pässwörd ☃"), "pässwörd ☃") is True
