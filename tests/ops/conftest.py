"""Fixtures for the operations tests: captured access lines, metric readings, a shared cache that is down."""

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import dead_cache  # noqa: F401  (re-exported to this folder's tests)


@pytest.fixture
def json_logs(settings, capsys):
    """Switch access lines to JSON and return a function that reads the lines written since the last call."""
    settings.LOG_FORMAT = "json"

    def read() -> list[dict]:
        out = capsys.readouterr().out
        return [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]

    read()
    return read


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """GET /metrics from loopback and return {(sample name, labels): value}."""
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200, response.content[:300]
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def sample(samples: dict, name: str, **labels) -> float:
    """Return one sample's value (0 when the label set was never observed)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
