"""users.hashers: Django's Argon2 hasher computed through argon2_ctx, in kept memory and ARGON2_THREADS threads.

Every hash here is checked against argon2-cffi's own functions and Django's own hasher: the same encoded form
for the same salt, and each verifies what the other made. Small costs keep the suite fast; the service's own
parameters (100 MiB) run once, through a login over HTTP.
"""

import os
import signal
import threading
import time

import argon2
import pytest
from argon2.low_level import Type, ffi
from django.contrib.auth import hashers as django_hashers
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from rest_framework.test import APIClient

from core import allocator
from tests.factories import DEFAULT_PASSWORD, UserFactory
from users import hashers as users_hashers
from users.hashers import Argon2PasswordHasher, HashUnavailableError, hash_raw
from users.models import LoginLockout

pytestmark = pytest.mark.usefixtures("argon2_preferred")  # the service's hasher first, as in production
PASSWORDS = ["correct horse battery staple", "", "pässwörd ✓ 密码", "x" * 1000]


class Small:
    """The same hashers at a cost a test can run hundreds of times (1 MiB, 1 pass, 4 lanes)."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 4


class SmallOurs(Small, Argon2PasswordHasher):
    pass


class SmallDjango(Small, django_hashers.Argon2PasswordHasher):
    pass


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_hash_is_byte_for_byte_argon2_cffi_s_and_django_s(password):
    ours, theirs = SmallOurs(), SmallDjango()
    salt = ours.salt()

    encoded = ours.encode(password, salt)

    assert encoded == theirs.encode(password, salt)
    assert encoded == "argon2" + argon2.low_level.hash_secret(
        password.encode(), salt.encode(), time_cost=1, memory_cost=1024, parallelism=4, hash_len=32, type=Type.ID
    ).decode("ascii")


@pytest.mark.parametrize("password", PASSWORDS)
def test_each_verifies_the_other_s_hash_and_refuses_another_password(password):
    ours, theirs = SmallOurs(), SmallDjango()
    by_django, by_us = theirs.encode(password, theirs.salt()), ours.encode(password, ours.salt())

    assert ours.verify(password, by_django)
    assert theirs.verify(password, by_us)
    assert not ours.verify(password + "!", by_django)
    assert not ours.verify(password[:-1], by_us) or password == ""
    assert ours.must_update(by_django) is False  # same parameters: nothing to upgrade


@pytest.mark.parametrize(
    ("variety", "version"), [(Type.I, 0x13), (Type.D, 0x13), (Type.ID, 0x13), (Type.I, 0x10), (Type.ID, 0x10)]
)
def test_older_varieties_and_versions_verify_and_are_marked_for_an_upgrade(variety, version):
    # Django once stored argon2i hashes, and argon2 1.0 (version 16) ones; they must still log their owners in.
    old = "argon2" + argon2.low_level.hash_secret(
        b"an old password", b"somesaltsomesalt", 1, 512, 2, 16, variety, version=version
    ).decode("ascii")

    assert SmallOurs().verify("an old password", old)
    assert not SmallOurs().verify("another password", old)
    assert SmallOurs().must_update(old)


@pytest.mark.parametrize("threads", [0, 1, 2, 3, 4, 64])
def test_the_hash_does_not_depend_on_the_number_of_threads(settings, threads):
    settings.ARGON2_THREADS = threads
    params = SmallOurs().params()

    raw = hash_raw(b"password", b"saltsaltsalt", params)

    assert raw == argon2.low_level.hash_secret_raw(b"password", b"saltsaltsalt", 1, 1024, 4, 32, Type.ID)


@pytest.mark.parametrize(
    "stored",
    [
        "argon2$argon2id$v=19$m=1024,t=1,p=4$c2FsdHNhbHRzYWx0",  # no hash
        "argon2$argon2id$v=19$m=1024,t=1,p=4$c2FsdHNhbHRzYWx0$not base64!",
        "argon2$argon2id$v=19$m=1024,t=1,p=4$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA",  # salt of 4 bytes: Argon2 refuses it
        "argon2$argon2id$v=19$m=1024,t=1,p=4$c2FsdHNhbHRzYWx0$AAA",  # a 2-byte hash: Argon2 refuses it
        "argon2$argon2id$v=19$m=1024,t=x,p=4$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAA",
        "argon2$argon2q$v=19$m=1024,t=1,p=4$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAA",
        "argon2$",
    ],
)
def test_a_stored_value_that_is_no_argon2_hash_matches_no_password(stored):
    assert SmallOurs().verify("password", stored) is False


def test_argon2_refused_its_memory_fails_the_check_as_an_error_not_as_a_wrong_password(monkeypatch, caplog):
    # The allocation callback raised: Argon2 is answered with its allocation error and stops there, touching no
    # memory. Django's own hasher would answer False: a wrong password, counted towards the account's lock.
    encoded = SmallOurs().encode("password", SmallOurs().salt())

    def refuse(size):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(allocator.BLOCKS, "lend", refuse)
    with pytest.raises(HashUnavailableError, match="Memory allocation error"):
        SmallOurs().verify("password", encoded)
    with pytest.raises(HashUnavailableError):
        SmallOurs().encode("password", SmallOurs().salt())
    assert "Argon2's memory callback failed" in caplog.text


@pytest.mark.django_db
def test_a_login_whose_hash_cannot_run_answers_500_and_counts_no_failure(monkeypatch):
    user = UserFactory(password="unused-factory-password")
    user.password = SmallOurs().encode(DEFAULT_PASSWORD, SmallOurs().salt())
    user.save(update_fields=["password"])
    monkeypatch.setattr(allocator.BLOCKS, "lend", lambda size: 1 / 0)

    response = APIClient(raise_request_exception=False).post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (500, "server_error")
    assert not LoginLockout.objects.filter(email=user.email).exists()


def test_a_kept_block_holds_nothing_of_the_last_hash(settings, monkeypatch):
    # Argon2 wipes its memory before giving it back (its free_memory), so the block kept between logins holds
    # no trace of the last password's hash.
    settings.ARGON2_KEEP_MEMORY = True
    monkeypatch.setattr(allocator, "BLOCKS", allocator.Blocks())  # none kept yet from another test's hash
    hash_raw(b"a secret password", b"saltsaltsalt", SmallOurs().params())
    kept = allocator.BLOCKS._kept

    assert kept is not None and kept.size == 1024 * 1024
    assert bytes(ffi.buffer(ffi.cast("uint8_t *", kept.address), kept.size)) == bytes(kept.size)


class WideOurs(SmallOurs):
    memory_cost = 16 * 1024  # 16 MiB: long enough a hash that four started together overlap


def hashes_at_once(count: int) -> int:
    """Start ``count`` hashes together in as many threads; return the most that held Argon2's memory at once."""
    blocks, lend, most = allocator.BLOCKS, allocator.BLOCKS.lend, [0]

    def counted_lend(size):
        address = lend(size)
        most[0] = max(most[0], len(blocks._lent))
        return address

    start = threading.Barrier(count)

    def hash_one():
        start.wait()
        hash_raw(b"password", b"saltsaltsalt", WideOurs().params())

    blocks.lend = counted_lend
    try:
        threads = [threading.Thread(target=hash_one) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        del blocks.lend
    return most[0]


def test_one_hash_at_a_time_runs_in_a_process_by_default_the_others_wait(monkeypatch):
    monkeypatch.setattr(allocator, "BLOCKS", allocator.Blocks())
    assert hashes_at_once(4) == 1
    assert allocator.BLOCKS.mapped == 1  # one block, lent in turn


def test_more_hashes_at_once_when_asked(monkeypatch):
    monkeypatch.setattr(allocator, "BLOCKS", allocator.Blocks())
    monkeypatch.setattr(users_hashers, "running", threading.BoundedSemaphore(4))
    assert hashes_at_once(4) > 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_hashes_even_when_its_parent_was_hashing_at_the_fork():
    # The parent's hash holds the one turn; the child's copy of that turn would never be given back.
    with users_hashers.running:
        pid = os.fork()
        if pid == 0:
            hash_raw(b"password", b"saltsaltsalt", SmallOurs().params())
            os._exit(0)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the child waited for a turn its parent's hash held")
    assert os.waitstatus_to_exitcode(done[1]) == 0


def test_the_service_hashes_with_it_under_django_s_algorithm_name():
    encoded = make_password("a password of the service")

    assert type(identify_hasher(encoded)) is Argon2PasswordHasher
    assert encoded.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")
    assert check_password("a password of the service", encoded)


@pytest.mark.django_db
def test_a_user_whose_hash_django_made_logs_in_over_http_and_keeps_it(api_client):
    # Accounts hashed before this hasher (by Django's own, same parameters) log in, and nothing is rehashed.
    stored = django_hashers.Argon2PasswordHasher().encode(
        DEFAULT_PASSWORD, django_hashers.Argon2PasswordHasher().salt()
    )
    user = UserFactory(password="unused-factory-password")
    user.password = stored
    user.save(update_fields=["password"])

    wrong = api_client.post("/api/v1/auth/token", {"email": user.email, "password": "wrong"}, format="json")
    right = api_client.post("/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")

    assert (wrong.status_code, wrong.json()["code"]) == (401, "authentication_failed")
    assert right.status_code == 200, right.content
    user.refresh_from_db()
    assert user.password == stored


@pytest.mark.django_db
def test_an_older_hash_is_upgraded_at_login_over_http(api_client):
    old = "argon2" + argon2.low_level.hash_secret(
        DEFAULT_PASSWORD.encode(), b"somesaltsomesalt", 1, 512, 2, 16, Type.I
    ).decode("ascii")
    user = UserFactory(password="unused-factory-password")
    user.password = old
    user.save(update_fields=["password"])

    response = api_client.post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")
    assert check_password(DEFAULT_PASSWORD, user.password)
