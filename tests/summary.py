"""One summary line per suite: printed at the end of the pytest run and collected for .ci/run to print last."""

import os


def report_suite_lines(terminalreporter, title: str, lines: list[str]) -> None:
    """Print ``lines`` under ``title`` and append them to $E2E_SUMMARY_FILE when set (make test sets it)."""
    if not lines:
        return
    terminalreporter.section(title)
    for line in lines:
        terminalreporter.write_line(line)
    summary = os.environ.get("E2E_SUMMARY_FILE")
    if summary:
        with open(summary, "a") as out:
            out.write("\n".join(lines) + "\n")
