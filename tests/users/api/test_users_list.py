"""GET /api/v1/users: staff only, search and filters, ordering, keyset cursor pages."""

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.assertions import assert_error
from tests.factories import UserFactory
from users.models import User

pytestmark = pytest.mark.django_db

URL = "/api/v1/users"
ORDERINGS = ["email", "-email", "date_joined", "-date_joined", "last_login", "-last_login"]


@pytest.fixture
def staff_client(staff_user, auth_client):
    return auth_client(staff_user)


def emails(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["email"] for row in response.json()["results"]]


def path_of(link: str) -> str:
    """Return the path and query of an absolute next/previous link, for the test client."""
    parts = urlsplit(link)
    assert parts.path == URL
    return f"{parts.path}?{parts.query}"


def walk(client, first_url: str, direction: str) -> tuple[list[str], list[dict]]:
    """Follow ``direction`` ("next" or "previous") links from ``first_url``; return ids in page order and pages."""
    ids, pages = [], []
    url = first_url
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.content
        page = response.json()
        pages.append(page)
        ids.extend(row["id"] for row in page["results"])
        url = path_of(page[direction]) if page[direction] else None
        assert len(pages) <= 100, "the cursor links never end"
    return ids, pages


# ---------------------------------------------------------------- who may list


def test_anonymous_list_returns_401_not_authenticated(api_client):
    assert_error(api_client.get(URL), 401, "not_authenticated")


def test_non_staff_list_returns_403_permission_denied(user, auth_client):
    assert_error(auth_client(user).get(URL), 403, "permission_denied")


def test_superuser_may_list(superuser, auth_client):
    assert emails(auth_client(superuser).get(URL)) == [superuser.email]


def test_list_with_a_bad_token_returns_401_token_not_valid(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer abc.def.ghi")

    assert_error(api_client.get(URL), 401, "token_not_valid")


def test_staff_list_returns_a_page_of_users(staff_user, user, staff_client):
    response = staff_client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert body["next"] is None and body["previous"] is None
    assert {row["email"] for row in body["results"]} == {staff_user.email, user.email}
    row = next(r for r in body["results"] if r["email"] == user.email)
    assert row == {
        "id": str(user.pk),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": True,
        "is_staff": False,
        "email_verified": False,
        "date_joined": row["date_joined"],
        "last_login": None,
    }
    assert datetime.fromisoformat(row["date_joined"].replace("Z", "+00:00")) == user.date_joined


def test_list_with_trailing_slash_works_without_redirect(staff_user, staff_client):
    assert emails(staff_client.get(URL + "/")) == [staff_user.email]


def test_list_is_newest_joined_first_by_default(staff_user, staff_client):
    now = datetime.now(UTC)
    older = UserFactory(email="older@example.com", date_joined=now - timedelta(days=2))
    newer = UserFactory(email="newer@example.com", date_joined=now - timedelta(days=1))
    User.objects.filter(pk=staff_user.pk).update(date_joined=now - timedelta(days=3))

    assert emails(staff_client.get(URL)) == [newer.email, older.email, staff_user.email]


# ---------------------------------------------------------------- search and filters


def test_search_matches_email_and_names_ignoring_case(staff_client):
    UserFactory(email="ann@example.com", first_name="Zed", last_name="Zed")
    UserFactory(email="bob@example.com", first_name="Joanna", last_name="Zed")
    UserFactory(email="carl@example.com", first_name="Carl", last_name="Hannah")
    UserFactory(email="dora@example.com", first_name="Dora", last_name="Zed")

    found = emails(staff_client.get(URL, {"search": "ANN", "ordering": "email"}))

    assert found == ["ann@example.com", "bob@example.com", "carl@example.com"]


def test_search_with_no_match_returns_an_empty_page(staff_client):
    response = staff_client.get(URL, {"search": "nobody-like-this"})

    assert response.json() == {"next": None, "previous": None, "results": []}


def test_blank_search_returns_everyone(staff_user, user, staff_client):
    assert set(emails(staff_client.get(URL, {"search": "  "}))) == {staff_user.email, user.email}


@pytest.mark.parametrize("term", ["%", "_", "\\"])
def test_search_treats_sql_wildcards_literally(staff_client, term):
    UserFactory(email="plain@example.com", first_name="Plain", last_name="User")
    UserFactory(email="odd@example.com", first_name=f"Odd{term}Name", last_name="User")

    assert emails(staff_client.get(URL, {"search": term})) == ["odd@example.com"]


def test_search_longer_than_an_email_returns_400(staff_client):
    assert_error(staff_client.get(URL, {"search": "x" * 255}), 400, "validation_error", fields=["search"])


@pytest.mark.parametrize(("value", "expected"), [("true", {"active@example.com"}), ("false", {"gone@example.com"})])
def test_is_active_filter(staff_user, staff_client, value, expected):
    User.objects.filter(pk=staff_user.pk).update(email="active@example.com")
    UserFactory(email="gone@example.com", inactive=True)

    assert set(emails(staff_client.get(URL, {"is_active": value}))) == expected


@pytest.mark.parametrize(("value", "expected"), [("true", {"staff@example.com"}), ("false", {"plain@example.com"})])
def test_is_staff_filter(staff_user, staff_client, value, expected):
    User.objects.filter(pk=staff_user.pk).update(email="staff@example.com")
    UserFactory(email="plain@example.com")

    assert set(emails(staff_client.get(URL, {"is_staff": value}))) == expected


def test_filters_and_search_combine(staff_client):
    UserFactory(email="ann.active@example.com")
    UserFactory(email="ann.inactive@example.com", inactive=True)
    UserFactory(email="ann.staff@example.com", staff=True)
    UserFactory(email="bob.active@example.com")

    found = emails(staff_client.get(URL, {"search": "ann", "is_active": "true", "is_staff": "false"}))

    assert found == ["ann.active@example.com"]


@pytest.mark.parametrize("field", ["is_active", "is_staff"])
@pytest.mark.parametrize("value", ["junk", "maybe", "2", "3"])
def test_invalid_boolean_filter_returns_400(staff_client, field, value):
    assert_error(staff_client.get(URL, {field: value}), 400, "validation_error", fields=[field])


def test_blank_boolean_filter_means_no_filter(staff_user, staff_client):
    UserFactory(email="gone@example.com", inactive=True)

    assert set(emails(staff_client.get(URL, {"is_active": ""}))) == {staff_user.email, "gone@example.com"}


# ---------------------------------------------------------------- ordering


@pytest.mark.parametrize("ordering", ["email", "-email"])
def test_ordering_by_email(staff_user, staff_client, ordering):
    User.objects.filter(pk=staff_user.pk).update(email="mallory@example.com")
    for email in ["carol@example.com", "alice@example.com", "zoe@example.com"]:
        UserFactory(email=email)
    expected = ["alice@example.com", "carol@example.com", "mallory@example.com", "zoe@example.com"]

    found = emails(staff_client.get(URL, {"ordering": ordering}))

    assert found == (expected if ordering == "email" else expected[::-1])


@pytest.mark.parametrize("ordering", ["date_joined", "-date_joined"])
def test_ordering_by_date_joined(staff_user, staff_client, ordering):
    now = datetime.now(UTC)
    User.objects.filter(pk=staff_user.pk).update(date_joined=now - timedelta(days=5))
    UserFactory(email="b@example.com", date_joined=now - timedelta(days=1))
    UserFactory(email="a@example.com", date_joined=now - timedelta(days=3))
    expected = [staff_user.email, "a@example.com", "b@example.com"]

    found = emails(staff_client.get(URL, {"ordering": ordering}))

    assert found == (expected if ordering == "date_joined" else expected[::-1])


@pytest.mark.parametrize("ordering", ["last_login", "-last_login"])
def test_ordering_by_last_login_keeps_never_logged_in_users_together(staff_user, staff_client, ordering):
    now = datetime.now(UTC)
    UserFactory(email="early@example.com", last_login=now - timedelta(days=3))
    UserFactory(email="late@example.com", last_login=now - timedelta(days=1))
    never = UserFactory(email="never@example.com")
    User.objects.filter(pk=staff_user.pk).update(last_login=now - timedelta(days=2))

    found = emails(staff_client.get(URL, {"ordering": ordering}))

    dated = ["early@example.com", staff_user.email, "late@example.com"]
    if ordering == "-last_login":
        dated.reverse()
    assert [e for e in found if e != never.email] == dated
    assert found.index(never.email) in (0, len(found) - 1)


@pytest.mark.parametrize("ordering", ["password", "id", "first_name", "--email", "email,date_joined", "-", "EMAIL"])
def test_invalid_ordering_returns_400(staff_client, ordering):
    assert_error(staff_client.get(URL, {"ordering": ordering}), 400, "validation_error", fields=["ordering"])


# ---------------------------------------------------------------- page size


def test_page_size_defaults_to_20(staff_client):
    UserFactory.create_batch(25)

    response = staff_client.get(URL)

    assert len(response.json()["results"]) == 20
    assert response.json()["next"] is not None


def test_page_size_is_honoured(staff_client):
    UserFactory.create_batch(6)

    response = staff_client.get(URL, {"page_size": 5})

    assert len(response.json()["results"]) == 5


def test_page_size_is_capped_at_100(staff_client):
    UserFactory.create_batch(105)

    response = staff_client.get(URL, {"page_size": 500})

    assert len(response.json()["results"]) == 100
    second = staff_client.get(path_of(response.json()["next"]))
    assert len(second.json()["results"]) == 6
    assert second.json()["next"] is None


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "1.5", "1e2", ""])
def test_invalid_page_size_returns_400(staff_client, page_size):
    assert_error(staff_client.get(URL, {"page_size": page_size}), 400, "validation_error", fields=["page_size"])


# ---------------------------------------------------------------- cursors


def _cursor(payload) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage!!", id="not-base64"),
        pytest.param(base64.urlsafe_b64encode(b"not json").decode(), id="not-json"),
        pytest.param(_cursor([1, 2]), id="not-an-object"),
        pytest.param(_cursor({"o": "-date_joined", "d": "n", "v": "2024-01-01T00:00:00+00:00"}), id="no-id"),
        pytest.param(
            _cursor({"o": "-date_joined", "d": "x", "v": "2024-01-01T00:00:00+00:00", "id": "0" * 32}), id="bad-dir"
        ),
        pytest.param(_cursor({"o": "-date_joined", "d": "n", "v": "yesterday", "id": "0" * 32}), id="bad-date"),
        pytest.param(_cursor({"o": "-date_joined", "d": "n", "v": "2024-01-01T00:00:00", "id": "0" * 32}), id="naive"),
        pytest.param(
            _cursor({"o": "-date_joined", "d": "n", "v": "2024-01-01T00:00:00+00:00", "id": "nope"}), id="bad-uuid"
        ),
        pytest.param(_cursor({"o": "email", "d": "n", "v": "a@example.com", "id": "0" * 32}), id="other-ordering"),
    ],
)
def test_invalid_cursor_returns_400(staff_client, cursor):
    assert_error(staff_client.get(URL, {"cursor": cursor}), 400, "validation_error", fields=["cursor"])


def test_cursor_of_one_ordering_is_refused_under_another(staff_client):
    UserFactory.create_batch(3)
    next_link = staff_client.get(URL, {"page_size": 1, "ordering": "email"}).json()["next"]
    cursor = parse_qs(urlsplit(next_link).query)["cursor"][0]

    response = staff_client.get(URL, {"page_size": 1, "ordering": "-email", "cursor": cursor})

    assert_error(response, 400, "validation_error", fields=["cursor"])


def test_text_cursor_with_a_non_string_value_returns_400(staff_client):
    cursor = _cursor({"o": "email", "d": "n", "v": 5, "id": "0" * 32})

    assert_error(staff_client.get(URL, {"ordering": "email", "cursor": cursor}), 400, "validation_error")


def test_next_link_keeps_the_query(staff_client):
    UserFactory.create_batch(3, first_name="Ann")

    response = staff_client.get(URL, {"page_size": 2, "search": "ann", "ordering": "email", "is_active": "true"})

    query = parse_qs(urlsplit(response.json()["next"]).query)
    assert query["page_size"] == ["2"]
    assert query["search"] == ["ann"]
    assert query["ordering"] == ["email"]
    assert query["is_active"] == ["true"]
    assert "cursor" in query


def test_pages_are_read_without_count_or_offset(staff_client):
    UserFactory.create_batch(7)
    first = staff_client.get(URL, {"page_size": 3, "ordering": "email"}).json()

    with CaptureQueriesContext(connection) as queries:
        second = staff_client.get(path_of(first["next"]))

    assert len(second.json()["results"]) == 3
    sql = " ".join(q["sql"].upper() for q in queries)
    assert "COUNT(" not in sql
    assert "OFFSET" not in sql


@pytest.fixture
def crowd(staff_user):
    """Users sharing date_joined and last_login values, a third never logged in, plus the staff caller."""
    base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    users = [staff_user]
    for n in range(22):
        users.append(
            UserFactory(
                email=f"crowd{n:02d}@example.com",
                date_joined=base + timedelta(hours=n // 4),
                last_login=None if n % 3 == 0 else base + timedelta(minutes=n // 5),
            )
        )
    return users


def _sort_key(ordering: str, row: dict):
    field = ordering.lstrip("-")
    value = row[field]
    if field == "email":
        return value
    # Never-logged-in users sort as the oldest possible time.
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else datetime.min.replace(tzinfo=UTC)


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_cursor_links_walk_every_user_once_forward_and_back(crowd, staff_client, ordering):
    everyone = staff_client.get(URL, {"ordering": ordering, "page_size": 100}).json()["results"]
    assert len(everyone) == len(crowd)
    keys = [_sort_key(ordering, row) for row in everyone]
    assert keys == sorted(keys, reverse=ordering.startswith("-"))
    expected = [row["id"] for row in everyone]

    forward, pages = walk(staff_client, f"{URL}?ordering={ordering}&page_size=4", "next")

    assert forward == expected
    assert len(set(forward)) == len(crowd)
    assert [len(p["results"]) for p in pages] == [4, 4, 4, 4, 4, 3]
    assert pages[0]["previous"] is None
    assert all(p["previous"] for p in pages[1:])

    backward_pages = walk(staff_client, path_of(pages[-1]["previous"]), "previous")[1]
    backward = [row["id"] for page in reversed(backward_pages) for row in page["results"]]
    assert backward + [row["id"] for row in pages[-1]["results"]] == expected
    assert backward_pages[-1]["previous"] is None
    assert all(p["next"] for p in backward_pages)


def test_previous_link_returns_the_page_before(crowd, staff_client):
    first = staff_client.get(URL, {"ordering": "last_login", "page_size": 5}).json()
    second = staff_client.get(path_of(first["next"])).json()

    back = staff_client.get(path_of(second["previous"])).json()

    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]
    assert back["previous"] is None
    assert staff_client.get(path_of(back["next"])).json()["results"] == second["results"]


def test_user_created_between_pages_neither_repeats_nor_shifts_the_walk(crowd, staff_client):
    first = staff_client.get(URL, {"ordering": "email", "page_size": 10}).json()
    UserFactory(email="aaa-new@example.com")

    rest = walk(staff_client, path_of(first["next"]), "next")[0]

    seen = [r["id"] for r in first["results"]] + rest
    assert len(seen) == len(set(seen)) == len(crowd)
