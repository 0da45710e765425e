"""Two commits of the service side by side in one run, beside the bare-Django floor: what a change is worth.

    .venv/bin/python -m bench.compare BASE [NEW]      # NEW: the work tree when omitted
    make bench-compare BASE=c8a198c NEW=688b4a1
    make bench-compare BASE=90f9850 NEW=9230898 BENCH_ARGS=--login    # logins too (15 s windows)

Ratios to a floor differ from machine to machine (bench/RESULTS.md); what a change is worth is best seen
with both versions served at once. Each commit is exported with ``git archive`` into a temporary directory
and served from there by ``gunicorn -c config/gunicorn.py config.wsgi`` (its own config file), 2 sync
workers, in the production settings of ``make bench``; F1 (bench/floor_django.py) is served beside them.
Both share one PostgreSQL database (``users_compare``, migrated by the work tree: compare commits whose
migrations agree) and one Redis database (db 3, flushed). wrk drives each server in turn, round after
round, on warm authenticated reads of one user (``--paths``), and the script prints medians, the ratio to
F1 and, per round, NEW's req/s over BASE's. With ``--login``, each round also logs one user in on BASE and
on NEW for ``--login-seconds`` each (which goes first alternates from round to round, as the machine drifts),
with the workers drained between the two; logins are compared with each other only (a floor has no hash).
"""

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.run import (
    OUT,
    PASSWORD,
    ROOT,
    STAFF_EMAIL,
    Server,
    drain,
    ensure_wrk,
    expect_ok,
    flush_redis,
    gunicorn_env,
    log,
    manage,
    mint_sessions,
    recreate_database,
    run_wrk,
    script_static,
    service_env,
    start,
    stop,
    wait_for_services,
    wait_ready,
)

LOGIN_PATH = "/api/v1/auth/token"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the commit to compare against")
    parser.add_argument("new", nargs="?", default="", help="the commit to measure (default: the work tree)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--paths", default="/api/v1/users/me", help="comma-separated; {id} is the user's id")
    parser.add_argument("--login", action="store_true", help="also compare logins (POST /api/v1/auth/token)")
    parser.add_argument("--login-seconds", type=int, default=15, help="seconds per login run (a few a second)")
    parser.add_argument("--port", type=int, default=18760, help="first of three ports")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/users_compare")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    return parser.parse_args(argv)


def export(commit: str, into: Path) -> Path:
    """Write ``commit``'s tree into ``into`` (git archive): what that commit would serve."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def ratios(new: list[float], base: list[float]) -> list[float]:
    """NEW's req/s over BASE's, round by round (each pair measured minutes, not hours, apart)."""
    return [n / b for n, b in zip(new, base, strict=True)]


def main(argv=None) -> None:
    args = parse_args(argv)
    wrk = ensure_wrk()
    wait_for_services(args.database_url, args.redis_url)
    tmp = Path(tempfile.mkdtemp(prefix="users-compare-"))
    OUT.mkdir(exist_ok=True)
    env = service_env(args)
    recreate_database(args.database_url)
    flush_redis(args.redis_url)
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "seed_users", "10", "--password", PASSWORD, "--seed", "1", "--staff-email", STAFF_EMAIL)
    token, user_id, email = mint_sessions(env, 1)["users"][0]

    trees = {"BASE": export(args.base, tmp / "base"), "NEW": export(args.new, tmp / "new") if args.new else ROOT}
    servers = {"F1": Server("F1", "bench.floor_django:application", args.port, {})}
    for n, (name, tree) in enumerate(trees.items(), start=1):
        servers[name] = Server(name, "config.wsgi", args.port + n, {}, cwd=tree)
    for server in servers.values():
        server.env = {**gunicorn_env(env, server.port, tmp / f"metrics-{server.name}"), "PYTHONPATH": str(server.cwd)}
    paths = [path.replace("{id}", user_id) for path in args.paths.split(",")]
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for server in servers.values():
            start(server)
        for name, server in servers.items():
            wait_ready(server, "/api/v1/users/me" if name == "F1" else "/healthz")
            for path in paths:
                expect_ok(server.name, server.base + path, token=token)
        scripts = {path: script_static(tmp / f"{n}.lua", url_path=path, token=token) for n, path in enumerate(paths)}
        if args.login:
            credentials = {"email": email, "password": PASSWORD}
            login_script = script_static(
                tmp / "login.lua", url_path=LOGIN_PATH, method="POST", body=json.dumps(credentials)
            )
            for name in ("BASE", "NEW"):
                expect_ok(name, servers[name].base + LOGIN_PATH, method="POST", body=credentials)
        for round_number in range(1, args.rounds + 1):
            log(f"round {round_number} of {args.rounds}")
            for path, script in scripts.items():
                for name, server in servers.items():
                    if name == "F1" and path != paths[0]:
                        continue  # one floor number per round is enough
                    stats = run_wrk(wrk, server.base, script, connections=args.connections, duration=args.duration)
                    results.setdefault((name, path), []).append(stats["rps"])
                    log(f"  {name} {path}: {stats['rps']:,.0f} req/s")
            if args.login:
                order = ("BASE", "NEW") if round_number % 2 else ("NEW", "BASE")
                for name in order:
                    drain(servers[name].base)
                    stats = run_wrk(
                        wrk,
                        servers[name].base,
                        login_script,
                        connections=args.connections,
                        duration=args.login_seconds,
                    )
                    results.setdefault((name, LOGIN_PATH), []).append(stats["rps"])
                    log(f"  {name} POST {LOGIN_PATH}: {stats['rps']:.2f} req/s")
                drain(servers[order[1]].base)  # the logins wrk left queued, before the next round's reads
    finally:
        for server in servers.values():
            stop(server)
    print(report(args, results, paths))


def report(args, results: dict, paths: list[str]) -> str:
    f1 = statistics.median(results[("F1", paths[0])])
    new = args.new or "the work tree"
    lines = [
        f"BASE {args.base} against NEW {new}, beside F1; wrk -t1 -c{args.connections} -d{args.duration}s, "
        f"{args.rounds} interleaved rounds, medians",
        "",
        "| server | path | req/s | x F1 |",
        "|---|---|---:|---:|",
        f"| F1 bare Django floor | | {f1:,.0f} | 1.00 |",
    ]
    for path in paths:
        for name in ("BASE", "NEW"):
            value = statistics.median(results[(name, path)])
            lines.append(f"| {name} | {path} | {value:,.0f} | {value / f1:.3f} |")
    if args.login:
        for name in ("BASE", "NEW"):
            value = statistics.median(results[(name, LOGIN_PATH)])
            lines.append(f"| {name} | POST {LOGIN_PATH} | {value:.2f} | |")
    lines.append("")
    for path in paths + ([LOGIN_PATH] if args.login else []):
        per_round = ratios(results[("NEW", path)], results[("BASE", path)])
        shown = ", ".join(f"{value:.3f}" for value in per_round)
        lines.append(f"NEW / BASE on {path}: median {statistics.median(per_round):.3f} (rounds: {shown})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
