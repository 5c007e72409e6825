#!/usr/bin/python3
"""One consumer-group member for the e2e group tests, with python3-kafka
(--lib kafka) or python3-confluent-kafka (--lib confluent).

The member subscribes to one topic in one group with automatic commits off. After
each poll it commits what it consumed, synchronously, and only then prints one
JSON line per record to stdout:
  {"m": member name, "p": partition, "o": offset, "v": value as text,
   "c": true if the commit covering the record succeeded}
so the Go test knows exactly which deliveries were committed. It runs until
SIGTERM, then closes the consumer (which leaves the group) and exits 0. After
SIGUSR1 it stops itself with SIGSTOP between its next poll and that poll's
commit (see maybe_freeze). Diagnostics go to stderr.
"""
import argparse
import json
import os
import signal
import sys

stop = False
freeze_next = False


def on_term(_sig, _frame):
    global stop
    stop = True


def on_usr1(_sig, _frame):
    global freeze_next
    freeze_next = True


def maybe_freeze(member):
    """After SIGUSR1, the member stops itself (SIGSTOP) holding the records it
    just polled, before committing them: a test resumes it with SIGCONT once
    its session has expired, and its commit must then be refused."""
    global freeze_next
    if freeze_next:
        freeze_next = False
        print("%s: freezing before commit" % member, file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)


def emit(member, recs, ok):
    for p, o, v in recs:
        sys.stdout.write(json.dumps({"m": member, "p": p, "o": o, "v": v.decode("utf-8"), "c": ok}) + "\n")
    sys.stdout.flush()


def run_kafka(a):
    from kafka import KafkaConsumer
    cons = KafkaConsumer(a.topic, bootstrap_servers=a.bootstrap, group_id=a.group,
                         client_id=a.member, enable_auto_commit=False,
                         auto_offset_reset="earliest", session_timeout_ms=a.session_ms,
                         heartbeat_interval_ms=100, max_poll_records=50,
                         fetch_max_wait_ms=100, reconnect_backoff_max_ms=200,
                         retry_backoff_ms=50)
    while not stop:
        batches = cons.poll(timeout_ms=100)
        recs = [(r.partition, r.offset, r.value) for rs in batches.values() for r in rs]
        if not recs:
            continue
        maybe_freeze(a.member)
        ok = True
        try:
            # Commits the positions after this poll. A rebalance happens only
            # inside poll, so the partitions are still ours here.
            cons.commit()
        except Exception as exc:  # CommitFailedError, connection errors
            ok = False
            print("%s: commit: %r" % (a.member, exc), file=sys.stderr, flush=True)
        emit(a.member, recs, ok)
    cons.close()


def run_confluent(a):
    from confluent_kafka import Consumer, KafkaException
    cons = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group,
                     "client.id": a.member, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": a.session_ms,
                     "heartbeat.interval.ms": 100, "fetch.wait.max.ms": 100,
                     "reconnect.backoff.max.ms": 200})
    cons.subscribe([a.topic])
    while not stop:
        msgs = cons.consume(num_messages=50, timeout=0.1)
        recs = []
        for m in msgs:
            if m.error():
                print("%s: %s" % (a.member, m.error()), file=sys.stderr, flush=True)
                continue
            recs.append((m.partition(), m.offset(), m.value()))
        if not recs:
            continue
        maybe_freeze(a.member)
        ok = True
        try:
            # Commits the consumed positions of the current assignment;
            # librdkafka serves rebalances only inside consume/poll.
            cons.commit(asynchronous=False)
        except KafkaException as exc:
            ok = False
            print("%s: commit: %s" % (a.member, exc), file=sys.stderr, flush=True)
        emit(a.member, recs, ok)
    cons.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", choices=["kafka", "confluent"], required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--member", required=True)
    ap.add_argument("--session-ms", type=int, default=6000)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, on_usr1)
    if a.lib == "kafka":
        run_kafka(a)
    else:
        run_confluent(a)


if __name__ == "__main__":
    main()
