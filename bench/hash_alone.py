"""The login's physical limit: how many password checks per second the hasher alone allows on W workers.

``python bench/hash_alone.py --seconds 5 --workers 2`` with BENCH_PASSWORD and BENCH_PASSWORD_HASH
(the stored hash, as in the database) in the environment, and the service's settings (its
PASSWORD_HASHERS, ARGON2_KEEP_MEMORY, ARGON2_THREADS). Each worker process calls Django's ``check_password`` in a
loop, exactly the call a login makes, keeping the hash's memory as a web worker does (core/allocator.py);
the total rate, the mean time of a check and its CPU (all threads: Argon2 hashes its lanes in threads) are
printed as JSON.

The rate is counted as wrk counts the logins it is set against: the checks that finished within the window,
over the window. wrk stops at its deadline and drops the logins still running, about half a login per worker;
a loop timed to the end of its last check would drop nothing and favour the hash by as much (about 1% in a
15 s window of logins that take 0.3 s each).
"""

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import django
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.contrib.auth.hashers import check_password  # noqa: E402


def verify_for(seconds: float, queue) -> None:
    password, encoded = os.environ["BENCH_PASSWORD"], os.environ["BENCH_PASSWORD_HASH"]
    assert check_password(password, encoded), "the password does not match the hash"
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    busy = cpu = 0.0  # wall time and CPU (every thread of this process) up to the end of the last counted check
    while True:
        check_password(password, encoded)
        if (now := time.perf_counter() - start) > seconds:
            break  # finished after the window closed: not counted, as wrk drops a login still running
        count, busy, cpu = count + 1, now, time.process_time() - cpu_start
    queue.put((count, seconds, busy, cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=verify_for, args=(args.seconds, queue)) for _ in range(args.workers)]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    rate = sum(count / window for count, window, _busy, _cpu in results)
    calls = sum(count for count, _window, _busy, _cpu in results)
    mean_ms = 1000 * sum(busy for _count, _window, busy, _cpu in results) / max(1, calls)
    cpu_ms = 1000 * sum(cpu for _count, _window, _busy, cpu in results) / max(1, calls)
    print(orjson.dumps({"rate": rate, "calls": calls, "mean_ms": mean_ms, "cpu_ms": cpu_ms}).decode())


if __name__ == "__main__":
    main()
