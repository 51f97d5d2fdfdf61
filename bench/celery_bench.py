"""Celery, the peer users know, on the same kind of backlog (scripts/bench).

Debian's python3-celery (5.2.6, run with /usr/bin/python3). One no-op
task, acks_late, results ignored, JSON; the arguments are the same
~200-byte {"n": N, "pad": "..."} as the warren jobs.

    BENCH_AMQP_URL=amqp://guest:guest@127.0.0.1:PORT// \\
        /usr/bin/python3 bench/celery_bench.py publish N
prints "celery_publish count=N secs=S rate=R" (apply_async in a loop, the
way a service publishes; Celery publishes without publisher confirms by
default, so this is not the same guarantee as the confirmed publishers).

The worker (scripts/bench starts it from the bench/ folder):
    celery -A celery_bench worker --pool prefork --concurrency 2 \\
        --loglevel WARNING --without-gossip --without-mingle --without-heartbeat
worker_prefetch_multiplier is 100, so the connection's prefetch is
100 x concurrency: the same number of unacked jobs as warrend's worker
processes with host.prefetch = 100 each.
"""
import os
import sys
import time

from celery import Celery

URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

app = Celery("celery_bench", broker=URL)
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=100,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop", acks_late=True, ignore_result=True)
def noop(**kwargs):
    return None


def pad_for(n, size=200):
    """The pad of bench_common.h's bench_body, so bodies match in size."""
    head = len('{"n":%d,"pad":"' % n)
    k = max(0, size - head - 2)
    return "".join(chr(ord("a") + i % 26) for i in range(k))


def publish(count):
    pad = pad_for(0)
    with app.producer_or_acquire() as producer:
        t0 = time.monotonic()
        for i in range(count):
            noop.apply_async(kwargs={"n": i, "pad": pad}, producer=producer)
        secs = time.monotonic() - t0
    print("celery_publish count=%d secs=%.3f rate=%.0f" % (count, secs, count / secs))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "publish":
        sys.exit("usage: celery_bench.py publish N")
    publish(int(sys.argv[2]))
