"""The users selectors: who may list, read and change whom."""

import uuid

import pytest

from tests.factories import UserFactory
from users import selectors
from users.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    """A plain user, another plain user, a staff member and a superuser."""
    return {
        "ann": UserFactory(),
        "bob": UserFactory(),
        "staff": UserFactory(staff=True),
        "root": UserFactory(superuser=True),
    }


@pytest.mark.parametrize("who", ["staff", "root"])
def test_user_list_returns_everyone_to_staff(people, who):
    assert set(selectors.user_list(requested_by=people[who])) == set(people.values())


def test_user_list_returns_nobody_to_a_non_staff_user(people):
    assert list(selectors.user_list(requested_by=people["ann"])) == []


def test_user_list_includes_inactive_users_for_staff(people):
    gone = UserFactory(inactive=True)

    assert gone in selectors.user_list(requested_by=people["staff"])


def test_user_visible_to_a_non_staff_user_is_only_themselves(people):
    assert list(selectors.user_visible_to(requested_by=people["ann"])) == [people["ann"]]


def test_user_visible_to_staff_is_everyone(people):
    assert set(selectors.user_visible_to(requested_by=people["staff"])) == set(people.values())


def test_user_get_for_returns_the_caller_themselves(people):
    assert selectors.user_get_for(requested_by=people["ann"], user_id=people["ann"].pk) == people["ann"]


def test_user_get_for_hides_another_user_from_a_non_staff_user(people):
    with pytest.raises(User.DoesNotExist):
        selectors.user_get_for(requested_by=people["ann"], user_id=people["bob"].pk)


def test_user_get_for_hides_staff_from_a_non_staff_user(people):
    with pytest.raises(User.DoesNotExist):
        selectors.user_get_for(requested_by=people["ann"], user_id=people["root"].pk)


@pytest.mark.parametrize("target", ["ann", "bob", "root"])
def test_user_get_for_lets_staff_read_anyone(people, target):
    assert selectors.user_get_for(requested_by=people["staff"], user_id=people[target].pk) == people[target]


@pytest.mark.parametrize("who", ["ann", "staff"])
def test_user_get_for_an_unknown_id_raises_does_not_exist(people, who):
    with pytest.raises(User.DoesNotExist):
        selectors.user_get_for(requested_by=people[who], user_id=uuid.uuid4())


def test_user_get_for_reads_the_current_row(people):
    User.objects.filter(pk=people["ann"].pk).update(first_name="Renamed")

    assert selectors.user_get_for(requested_by=people["staff"], user_id=people["ann"].pk).first_name == "Renamed"
