"""bench/compare.py: two commits side by side; what it exports, and how it reports."""

import subprocess

import pytest

from bench import compare


def test_a_commit_is_exported_as_the_tree_it_would_serve(tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=compare.ROOT, capture_output=True, text=True)
    if head.returncode:
        pytest.skip("not a git checkout")  # a source archive has no commits to compare
    tree = compare.export("HEAD", tmp_path / "head")
    for served in ("config/wsgi.py", "config/gunicorn.py", "manage.py", "users/hot_path.py"):
        assert (tree / served).is_file(), served
    shown = subprocess.run(["git", "show", "HEAD:config/wsgi.py"], cwd=compare.ROOT, capture_output=True, text=True)
    assert (tree / "config/wsgi.py").read_text() == shown.stdout


def test_an_unknown_commit_stops_the_run(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        compare.export("no-such-commit-0000", tmp_path / "missing")


def test_the_new_commit_defaults_to_the_work_tree():
    args = compare.parse_args(["c8a198c"])
    assert (args.base, args.new, args.rounds) == ("c8a198c", "", 5)
    assert args.database_url.endswith("/users_compare")  # never the bench's or the suite's database
    assert args.redis_url.endswith("/3")


def test_the_report_gives_medians_ratios_to_the_floor_and_per_round_ratios():
    args = compare.parse_args(["base1", "new2", "--rounds", "3", "--duration", "2"])
    path = "/api/v1/users/me"
    results = {("F1", path): [6000.0, 7000.0, 6500.0], ("BASE", path): [3000.0, 3100.0, 3200.0]}
    results[("NEW", path)] = [3300.0, 3100.0, 3840.0]
    text = compare.report(args, results, [path])
    assert "BASE base1 against NEW new2" in text
    assert "| F1 bare Django floor | | 6,500 | 1.00 |" in text
    assert f"| BASE | {path} | 3,100 | 0.477 |" in text
    assert f"| NEW | {path} | 3,300 | 0.508 |" in text
    assert f"NEW / BASE on {path}: median 1.100 (rounds: 1.100, 1.000, 1.200)" in text


def test_logins_are_reported_against_each_other_only():
    args = compare.parse_args(["base1", "new2", "--rounds", "2", "--login"])
    assert (args.login, args.login_seconds) == (True, 15)
    path, login = "/api/v1/users/me", compare.LOGIN_PATH
    results = {("F1", path): [6000.0, 6000.0], ("BASE", path): [3000.0, 3000.0], ("NEW", path): [3000.0, 3000.0]}
    results |= {("BASE", login): [8.0, 10.0], ("NEW", login): [8.8, 10.5]}
    text = compare.report(args, results, [path])
    assert f"| BASE | POST {login} | 9.00 | |" in text
    assert f"| NEW | POST {login} | 9.65 | |" in text
    assert f"NEW / BASE on {login}: median 1.075 (rounds: 1.100, 1.050)" in text


def test_logins_are_left_out_unless_asked_for():
    args = compare.parse_args(["base1"])
    assert args.login is False
    path = "/api/v1/users/me"
    results = {("F1", path): [6000.0], ("BASE", path): [3000.0], ("NEW", path): [3000.0]}
    assert compare.LOGIN_PATH not in compare.report(args, results, [path])
