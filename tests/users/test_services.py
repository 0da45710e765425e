"""The users write services, called directly against the database."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import DEFAULT_PASSWORD, UserFactory
from users import services
from users.models import Session, User
from users.tokens import session_issue

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-pass"


def open_session(user) -> Session:
    pair = session_issue(user=user, ip="127.0.0.1", user_agent="pytest")
    return Session.objects.get(pk=pair.session_id)


# ---------------------------------------------------------------- user_create


def test_user_create_saves_a_user_with_a_normalised_email_and_hashed_password():
    user = services.user_create(email=" Ann@Example.COM ", password=PASSWORD, first_name="Ann", last_name="Lee")

    saved = User.objects.get(pk=user.pk)
    assert saved.email == "ann@example.com"
    assert (saved.first_name, saved.last_name) == ("Ann", "Lee")
    assert saved.password != PASSWORD and saved.check_password(PASSWORD)
    assert saved.is_active is True and saved.is_staff is False and saved.is_superuser is False
    assert saved.email_verified is False


def test_user_create_honours_is_active_and_is_staff():
    user = services.user_create(email="ann@example.com", password=PASSWORD, is_active=False, is_staff=True)

    user.refresh_from_db()
    assert user.is_active is False and user.is_staff is True
    assert user.is_superuser is False


def test_user_create_refuses_an_email_taken_in_another_case():
    UserFactory(email="ann@example.com")

    with pytest.raises(ValidationError) as excinfo:
        services.user_create(email="ANN@example.com", password=PASSWORD)

    assert set(excinfo.value.message_dict) == {"email"}
    assert User.objects.count() == 1


@pytest.mark.parametrize("password", ["short", "12345678901234", "password123", "ann@example.com"])
def test_user_create_refuses_a_weak_password(password):
    with pytest.raises(ValidationError) as excinfo:
        services.user_create(email="ann@example.com", password=password)

    assert "password" in excinfo.value.message_dict
    assert not User.objects.exists()


def test_user_create_refuses_a_password_like_the_name():
    with pytest.raises(ValidationError) as excinfo:
        services.user_create(email="x@example.com", password="Bartholomew", first_name="Bartholomew")

    assert "password" in excinfo.value.message_dict


@pytest.mark.parametrize("email", ["not-an-email", ""])
def test_user_create_refuses_an_invalid_email(email):
    with pytest.raises(ValidationError) as excinfo:
        services.user_create(email=email, password=PASSWORD)

    assert "email" in excinfo.value.message_dict
    assert not User.objects.exists()


def test_user_create_refuses_an_overlong_name():
    with pytest.raises(ValidationError) as excinfo:
        services.user_create(email="ann@example.com", password=PASSWORD, first_name="x" * 151)

    assert "first_name" in excinfo.value.message_dict
    assert not User.objects.exists()


# ---------------------------------------------------------------- user_update


def test_user_update_applies_the_writable_fields():
    user = UserFactory()

    services.user_update(
        user=user, data={"first_name": "Ann", "last_name": "Lee", "is_staff": True, "is_active": True}
    )

    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.is_staff, user.is_active) == ("Ann", "Lee", True, True)


def test_user_update_ignores_fields_that_are_not_writable():
    user = UserFactory()
    pk, password = user.pk, user.password

    services.user_update(
        user=user, data={"password": "x", "is_superuser": True, "email_verified": True, "id": "00000000"}
    )

    user.refresh_from_db()
    assert user.pk == pk and user.password == password
    assert user.is_superuser is False and user.email_verified is False


def test_user_update_with_nothing_changed_writes_nothing():
    user = UserFactory(first_name="Ann")

    with CaptureQueriesContext(connection) as queries:
        returned = services.user_update(user=user, data={"first_name": "Ann", "email": user.email.upper()})

    assert returned is user
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == []


def test_user_update_of_the_email_normalises_it_and_clears_verification():
    user = UserFactory(email_verified=True)

    services.user_update(user=user, data={"email": " New@Example.com"})

    user.refresh_from_db()
    assert user.email == "new@example.com"
    assert user.email_verified is False


def test_user_update_to_the_same_email_keeps_verification():
    user = UserFactory(email="ann@example.com", email_verified=True)

    services.user_update(user=user, data={"email": "ANN@example.com", "first_name": "Ann"})

    user.refresh_from_db()
    assert user.email_verified is True and user.first_name == "Ann"


def test_user_update_refuses_an_email_taken_in_another_case():
    UserFactory(email="taken@example.com")
    user = UserFactory(email="ann@example.com")

    with pytest.raises(ValidationError) as excinfo:
        services.user_update(user=user, data={"email": "Taken@Example.com"})

    assert set(excinfo.value.message_dict) == {"email"}
    assert User.objects.get(pk=user.pk).email == "ann@example.com"


def test_user_update_refuses_an_invalid_email():
    user = UserFactory(email="ann@example.com")

    with pytest.raises(ValidationError) as excinfo:
        services.user_update(user=user, data={"email": "nope"})

    assert "email" in excinfo.value.message_dict
    assert User.objects.get(pk=user.pk).email == "ann@example.com"


def test_deactivation_ends_every_open_session_of_the_user():
    user, other = UserFactory(), UserFactory()
    sessions = [open_session(user), open_session(user)]
    others_session = open_session(other)

    services.user_update(user=user, data={"is_active": False})

    for session in sessions:
        session.refresh_from_db()
        assert session.ended_at is not None
        assert session.end_reason == Session.EndReason.DEACTIVATED
    others_session.refresh_from_db()
    assert others_session.ended_at is None


def test_other_updates_leave_sessions_open():
    user = UserFactory()
    session = open_session(user)

    services.user_update(user=user, data={"first_name": "Ann", "email": "moved@example.com", "is_staff": True})

    session.refresh_from_db()
    assert session.ended_at is None


def test_user_set_active_deactivates_and_reactivates():
    user = UserFactory()
    session = open_session(user)

    services.user_set_active(user=user, is_active=False)
    assert User.objects.get(pk=user.pk).is_active is False
    session.refresh_from_db()
    assert session.ended_at is not None

    services.user_set_active(user=user, is_active=True)
    assert User.objects.get(pk=user.pk).is_active is True


# ---------------------------------------------------------------- user_delete


def test_user_delete_removes_the_user_and_their_sessions():
    user, other = UserFactory(), UserFactory()
    open_session(user)
    open_session(other)

    services.user_delete(user=user)

    assert not User.objects.filter(pk=user.pk).exists()
    assert not Session.objects.filter(user_id=user.pk).exists()
    assert Session.objects.filter(user=other).count() == 1


def test_user_delete_frees_the_email():
    user = UserFactory(email="ann@example.com")

    services.user_delete(user=user)

    assert services.user_create(email="Ann@example.com", password=PASSWORD).email == "ann@example.com"


# ---------------------------------------------------------------- password_change


def test_password_change_sets_the_new_password_and_keeps_only_the_named_session():
    user = UserFactory()
    kept, ended = open_session(user), open_session(user)

    services.password_change(
        user=user, current_password=DEFAULT_PASSWORD, new_password="a-new-long-password", keep_session_id=kept.pk
    )

    user.refresh_from_db()
    assert user.check_password("a-new-long-password")
    kept.refresh_from_db()
    ended.refresh_from_db()
    assert kept.ended_at is None
    assert ended.ended_at is not None and ended.end_reason == Session.EndReason.PASSWORD_CHANGED


def test_password_change_refuses_a_wrong_current_password():
    user = UserFactory()

    with pytest.raises(ValidationError) as excinfo:
        services.password_change(
            user=user, current_password="wrong-password", new_password="a-new-long-password", keep_session_id=None
        )

    assert set(excinfo.value.message_dict) == {"current_password"}
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_password_change_refuses_a_weak_new_password():
    user = UserFactory()

    with pytest.raises(ValidationError) as excinfo:
        services.password_change(
            user=user, current_password=DEFAULT_PASSWORD, new_password="123", keep_session_id=None
        )

    assert set(excinfo.value.message_dict) == {"new_password"}
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
