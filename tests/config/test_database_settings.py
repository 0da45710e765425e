"""DATABASE_URL and the PostgreSQL switches read from the environment (settings loaded in a fresh process)."""

import json
import os

from tests.config.support import manage_shell

PRINT_DATABASE = (
    "import json; from django.conf import settings; d = settings.DATABASES['default']; "
    "print(json.dumps({'cursors_off': d.get('DISABLE_SERVER_SIDE_CURSORS', False), 'options': d['OPTIONS'], "
    "'max_age': d.get('CONN_MAX_AGE'), 'health': d.get('CONN_HEALTH_CHECKS')}))"
)


def database_settings(**variables: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **variables)
    result = manage_shell(PRINT_DATABASE, env, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_postgresql_keeps_health_checked_connections_and_server_features_by_default():
    found = database_settings(DATABASE_URL="postgres://app@db.example.com:5432/users")
    assert found["max_age"] == 600 and found["health"] is True
    assert found["cursors_off"] is False
    assert "prepare_threshold" not in found["options"]


def test_transaction_pooling_turns_off_server_side_cursors_and_prepared_statements():
    found = database_settings(
        DATABASE_URL="postgres://app@pgbouncer.example.com:6432/users", DATABASE_TRANSACTION_POOLING="true"
    )
    assert found["cursors_off"] is True
    assert found["options"]["prepare_threshold"] is None
