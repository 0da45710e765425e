"""gunicorn settings for the users service: ``gunicorn -c config/gunicorn.py config.wsgi`` (the Procfile's web line).

Correctness never depends on this file: ``gunicorn config.wsgi`` alone serves the same API (with gunicorn's
defaults, and /metrics counting per worker). What this file adds: workers sized for the machine, bounded
shutdown and recycling, the app's own JSON access line instead of gunicorn's, trusted proxies from the
environment, Prometheus' multiprocess mode so /metrics is the whole server's.

Environment: PORT (8000), GUNICORN_BIND (0.0.0.0:$PORT), WEB_CONCURRENCY (workers, default 2 x cores + 1),
GUNICORN_THREADS (1: sync workers; more: gthread), GUNICORN_TIMEOUT (30), GUNICORN_GRACEFUL_TIMEOUT (25),
GUNICORN_KEEPALIVE (5), GUNICORN_MAX_REQUESTS (10000), GUNICORN_MAX_REQUESTS_JITTER (1000),
FORWARDED_ALLOW_IPS (127.0.0.1,::1), PROMETHEUS_MULTIPROC_DIR (a fresh temporary directory), LOG_LEVEL,
LOG_FORMAT. (The password hasher keeps its memory between logins in any server: core/allocator.py.)
"""

import glob
import os
import shutil
import tempfile

from gunicorn.glogging import Logger as GunicornLogger

_env = os.environ

bind = _env.get("GUNICORN_BIND") or f"0.0.0.0:{_env.get('PORT') or '8000'}"
# Sync workers for a synchronous app: 2 x cores + 1 keeps every core busy while some workers wait on
# PostgreSQL or Redis (gunicorn's own advice).
workers = int(_env.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)
threads = int(_env.get("GUNICORN_THREADS") or 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(_env.get("GUNICORN_TIMEOUT") or 30)
# SIGTERM: stop accepting, let in-flight requests finish for up to this long, then exit. Keep it below the
# orchestrator's kill delay (Kubernetes' terminationGracePeriodSeconds is 30 by default).
graceful_timeout = int(_env.get("GUNICORN_GRACEFUL_TIMEOUT") or 25)
keepalive = int(_env.get("GUNICORN_KEEPALIVE") or 5)
# Recycle workers now and then (bounded memory), jittered so they never restart together.
max_requests = int(_env.get("GUNICORN_MAX_REQUESTS") or 10000)
max_requests_jitter = int(_env.get("GUNICORN_MAX_REQUESTS_JITTER") or 1000)
# Which peers may set X-Forwarded-Proto and friends: loopback by default; the balancer's address in production.
forwarded_allow_ips = _env.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"
# The application writes one JSON access line per request (core.access_log); gunicorn's would repeat it.
accesslog = None


class AppAccessLogger(GunicornLogger):
    """gunicorn's logger without its access line unless ``accesslog`` is set.

    With ``logconfig_dict`` set (JSON lines below), gunicorn builds every request's access atoms and hands
    them to its ``gunicorn.access`` logger, which has no handler here and drops them: about 5% of a
    worker's time on a cached read (bench/RESULTS.md). The application's own access line is the record.
    """

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logger_class = AppAccessLogger
errorlog = "-"
loglevel = (_env.get("LOG_LEVEL") or "info").lower()
# gunicorn's own lines (boot, signals, worker timeouts) in the same JSON shape as the app's in production.
if (_env.get("LOG_FORMAT") or ("json" if _env.get("DJANGO_ENV") == "production" else "text")) == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
        "handlers": {
            "json_stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "json"}
        },
        "root": {"handlers": ["json_stderr"], "level": loglevel.upper()},
        "loggers": {"gunicorn.error": {"handlers": ["json_stderr"], "level": loglevel.upper(), "propagate": False}},
    }
# Heartbeat files in memory: a slow disk must not make the master think a worker hung. gunicorn creates them
# with mkstemp and unlinks them at once, so a shared directory is safe here.
_SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None
# No control socket: its default path is per user, so two instances on one host would fight over it.
control_socket_disable = True
preload_app = False

# Prometheus multiprocess mode: workers write their metrics to files in this directory and /metrics merges
# them. It must be set before any worker imports prometheus_client, hence here, in the master.
if not _env.get("PROMETHEUS_MULTIPROC_DIR"):
    _env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="users-service-metrics-")
    _env["USERS_SERVICE_METRICS_DIR_CREATED"] = "1"


def on_starting(server):
    """Start from empty metric files: values left by an earlier server would be added to this one's."""
    path = _env["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)


def child_exit(server, worker):
    """Drop the live-gauge files of a worker that exited (its counters stay: they are part of the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this file created."""
    if _env.get("USERS_SERVICE_METRICS_DIR_CREATED"):
        shutil.rmtree(_env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
