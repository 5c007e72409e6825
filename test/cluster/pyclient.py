#!/usr/bin/python3
"""Drives python3-kafka (module kafka) or python3-confluent-kafka (module confluent_kafka)
for the cluster client test (clients_test.go), one JSON object a line on stdout.

  produce: sends "<run>-<seq>" values to partition seq % --partitions with acks=all,
           paced by --interval, until stdin reaches EOF; prints {"p", "o", "v"} for each
           record as its acknowledgement arrives; then one "END" record to every
           partition, and {"done": <values sent>} once all are acknowledged or failed.
  consume: reads --topic in consumer group --group (subscribe, from the earliest
           offset), printing {"p", "o", "v"} for every record, until it has read "END"
           in every partition.

Errors end the process with {"error": {"type", "msg"}} and exit status 3. The approach is
test/e2e's pyclient.py; this file is separate so that the two tests can change apart.
"""
import argparse
import json
import sys
import threading
import time
import traceback

_out = threading.Lock()


def emit(obj):
    with _out:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def fail(exc):
    emit({"error": {"type": type(exc).__name__, "msg": str(exc)}})
    traceback.print_exc(file=sys.stderr)
    sys.exit(3)


def stdin_closed():
    """An event set once stdin reaches EOF: the test's signal to stop producing."""
    ev = threading.Event()

    def watch():
        sys.stdin.read()
        ev.set()

    threading.Thread(target=watch, daemon=True).start()
    return ev


# ---------------------------------------------------------------- python3-kafka

def kp_produce(a):
    from kafka import KafkaProducer
    # kafka-python 2.0 has no idempotent producer: retries may duplicate, which the test
    # allows for this client; one request in flight keeps the order.
    prod = KafkaProducer(bootstrap_servers=a.bootstrap, acks="all", retries=1000,
                         retry_backoff_ms=200, linger_ms=5,
                         max_in_flight_requests_per_connection=1,
                         request_timeout_ms=10000, max_block_ms=int(a.timeout * 1000))
    stop = stdin_closed()
    errs = []

    def ok(v):
        return lambda md: emit({"p": md.partition, "o": md.offset, "v": v})

    def bad(exc):
        errs.append(str(exc))

    seq = 0
    while not stop.is_set():
        v = "%s-%08d" % (a.run, seq)
        prod.send(a.topic, value=v.encode(), partition=seq % a.partitions) \
            .add_callback(ok(v)).add_errback(bad)
        seq += 1
        time.sleep(a.interval)
    ends = [prod.send(a.topic, value=b"END", partition=p) for p in range(a.partitions)]
    prod.flush(timeout=a.timeout)
    for f in ends:
        f.get(timeout=a.timeout)
    prod.close(timeout=a.timeout)
    return {"done": seq, "errors": errs[:5], "failed": len(errs)}


def kp_consume(a):
    from kafka import KafkaConsumer
    cons = KafkaConsumer(a.topic, bootstrap_servers=a.bootstrap, group_id=a.group,
                         auto_offset_reset="earliest", enable_auto_commit=True,
                         auto_commit_interval_ms=500, request_timeout_ms=11000,
                         session_timeout_ms=10000, heartbeat_interval_ms=1000)
    ended = set()
    deadline = time.time() + a.timeout
    while len(ended) < a.partitions:
        if time.time() > deadline:
            raise TimeoutError("END read in partitions %s of %d" % (sorted(ended), a.partitions))
        for tp, msgs in cons.poll(timeout_ms=500).items():
            for m in msgs:
                v = m.value.decode()
                emit({"p": m.partition, "o": m.offset, "v": v})
                if v == "END":
                    ended.add(m.partition)
    cons.close()
    return {"done": True}


# ------------------------------------------------------ python3-confluent-kafka

def ck_produce(a):
    from confluent_kafka import Producer
    prod = Producer({"bootstrap.servers": a.bootstrap, "acks": "all", "linger.ms": 5,
                     "enable.idempotence": True,
                     "message.timeout.ms": int(a.timeout * 1000)})
    stop = stdin_closed()
    errs = []

    def cb(err, msg):
        if err is not None:
            errs.append(str(err))
            return
        emit({"p": msg.partition(), "o": msg.offset(), "v": msg.value().decode()})

    def send(v, p):
        while True:
            try:
                prod.produce(a.topic, value=v.encode(), partition=p, on_delivery=cb)
                return
            except BufferError:
                prod.poll(0.1)

    seq = 0
    while not stop.is_set():
        send("%s-%08d" % (a.run, seq), seq % a.partitions)
        seq += 1
        prod.poll(a.interval)
    for p in range(a.partitions):
        send("END", p)
    left = prod.flush(a.timeout)
    if left:
        raise RuntimeError("%d records undelivered after %ss, errors %s" % (left, a.timeout, errs[:5]))
    return {"done": seq, "errors": errs[:5], "failed": len(errs)}


def ck_consume(a):
    from confluent_kafka import Consumer, KafkaException
    cons = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": True,
                     "auto.commit.interval.ms": 500, "session.timeout.ms": 10000})
    cons.subscribe([a.topic])
    ended = set()
    deadline = time.time() + a.timeout
    while len(ended) < a.partitions:
        if time.time() > deadline:
            raise TimeoutError("END read in partitions %s of %d" % (sorted(ended), a.partitions))
        m = cons.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            if m.error().fatal():
                raise KafkaException(m.error())
            continue  # transient (a broker going away): librdkafka recovers by itself
        v = m.value().decode()
        emit({"p": m.partition(), "o": m.offset(), "v": v})
        if v == "END":
            ended.add(m.partition())
    cons.close()
    return {"done": True}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib", choices=["kafka", "confluent"])
    ap.add_argument("cmd", choices=["produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--group")
    ap.add_argument("--run", default="py")
    ap.add_argument("--interval", type=float, default=0.01)  # seconds between records
    ap.add_argument("--timeout", type=float, default=60)  # seconds
    a = ap.parse_args()
    try:
        if a.cmd == "produce":
            res = (kp_produce if a.lib == "kafka" else ck_produce)(a)
        else:
            res = (kp_consume if a.lib == "kafka" else ck_consume)(a)
    except Exception as e:  # reported to the Go test, which fails with it
        fail(e)
    emit(res)


if __name__ == "__main__":
    main()
