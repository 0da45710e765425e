"""The hostile suites' session hooks: count their tests and failures, sum the workers' tallies, print one line each.

Imported by tests/conftest.py, so the process that reports has them whatever it was asked to run: under
pytest-xdist the controller collects nothing and never loads tests/hostile/conftest.py, yet it is the one that
sees every test's report and prints the summary. Each worker counts the requests its tests send and hands its
tally over when it finishes.
"""

from tests.hostile.tally import SUITES, TALLY, suite_of
from tests.summary import report_suite_lines

_on_xdist_worker = False


def pytest_configure(config):
    global _on_xdist_worker
    _on_xdist_worker = hasattr(config, "workerinput")


def pytest_runtest_logreport(report):
    suite = suite_of(report.nodeid)
    if suite is None or _on_xdist_worker:  # the controller counts tests from the reports workers forward
        return
    if report.when == "call":
        TALLY[suite]["tests"] += 1
    if report.outcome == "failed":
        TALLY[suite]["failures"] += 1


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the tally to the controller
        workeroutput["hostileTALLY"] = {suite: dict(counts) for suite, counts in TALLY.items()}


def pytest_testnodedown(node, error):
    for suite, counts in getattr(node, "workeroutput", {}).get("hostileTALLY", {}).items():
        TALLY[suite].update(counts)


def pytest_terminal_summary(terminalreporter):
    if _on_xdist_worker:  # its tally goes to the controller (pytest_sessionfinish), which prints the sum
        return
    lines = []
    for suite in dict.fromkeys(SUITES.values()):
        if suite in TALLY:
            counts = TALLY[suite]
            lines.append(
                f"hostile {suite}: {counts['requests']} requests sent, {counts['tests']} tests, "
                f"{counts['failures']} failures, {counts['5xx']} 5xx"
            )
    report_suite_lines(terminalreporter, "hostile input summary", lines)
