"""Diagnostic only: the service's gunicorn settings, with its per-request Redis round trip answered in process.

``make bench`` serves a fourth copy of the service with this file instead of config/gunicorn.py, to show
what that one round trip (session state, user entry, per-user counter) costs on this machine: each worker
sends a distinct command batch to Redis until every entry it reads is there (an entry is filled after a
miss), then answers the same batch from memory. Never use it to serve: a revoked session would stay open
and the per-user limit would stop counting.
"""

from config.gunicorn import *  # noqa: F403  (the same workers, timeouts and logging as the service)


def post_worker_init(worker):
    from users import auth_state, hot_path

    # Nothing sent ahead: the view's own round trip, answered below, is the only one.
    hot_path.auth_prefetch = lambda **_ids: None

    send = auth_state._send_pipelined
    replies: dict = {}

    def answered_in_process(client, commands, **options):
        key = tuple(commands)
        if key in replies:
            return replies[key]
        answer = send(client, commands, **options)
        if None not in answer[0]:  # the MGET found every entry: a warm read's answer, remembered
            replies[key] = answer
        return answer

    auth_state._send_pipelined = answered_in_process
