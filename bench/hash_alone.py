"""The login's physical limit: how many password checks per second the hasher alone allows on W workers.

``python bench/hash_alone.py --seconds 5 --workers 2`` with BENCH_PASSWORD and BENCH_PASSWORD_HASH
(the stored hash, as in the database) in the environment, and the service's settings (its
PASSWORD_HASHERS, ARGON2_KEEP_MEMORY). Each worker process calls Django's ``check_password`` in a loop,
exactly the call a login makes, with its memory allocator tuned as a web worker's is (core/allocator.py);
the total rate, the mean time of a check and its CPU (all threads: Argon2 hashes its lanes in threads) are
printed as JSON.
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

from core.allocator import keep_hash_memory  # noqa: E402


def verify_for(seconds: float, queue) -> None:
    keep_hash_memory()  # as config/gunicorn.py does in each web worker
    password, encoded = os.environ["BENCH_PASSWORD"], os.environ["BENCH_PASSWORD_HASH"]
    assert check_password(password, encoded), "the password does not match the hash"
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        check_password(password, encoded)
        count += 1
    queue.put((count, elapsed, time.process_time() - cpu_start))  # CPU of every thread of this process


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
    rate = sum(count / elapsed for count, elapsed, _cpu in results)
    calls = sum(count for count, _elapsed, _cpu in results)
    mean_ms = 1000 * sum(elapsed for _count, elapsed, _cpu in results) / max(1, calls)
    cpu_ms = 1000 * sum(cpu for _count, _elapsed, cpu in results) / max(1, calls)
    print(orjson.dumps({"rate": rate, "calls": calls, "mean_ms": mean_ms, "cpu_ms": cpu_ms}).decode())


if __name__ == "__main__":
    main()
