"""The tally of the hostile-input suites: requests sent and 5xx answers per suite (conftest prints it)."""

import collections

# Test module -> the suite's name in the summary.
SUITES = {
    "test_schemathesis": "schemathesis",
    "test_owasp_api": "owasp api top 10",
    "test_odd_input": "odd input",
    "test_odd_input_gunicorn": "odd input",
}
TALLY: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def suite_of(nodeid: str) -> str | None:
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return SUITES.get(module)


def count_response(suite: str, status: int) -> None:
    """Count one request of ``suite`` (for requests that do not pass through this process's Django)."""
    TALLY[suite]["requests"] += 1
    if status >= 500:
        TALLY[suite]["5xx"] += 1
