#!/usr/bin/python3
"""Drives python3-kafka (module kafka) or python3-confluent-kafka (module
confluent_kafka) for the e2e tests, with a binary-safe JSON interface.

A record is a JSON object:
  {"p": partition, "o": offset, "ts": timestamp ms, "tstype": 0|1 (consume only),
   "k": base64 key or null, "v": base64 value or null,
   "h": [[header key, base64 header value], ...]}

Commands (one JSON object on stdout, errors as {"error": {"type": ..., "msg": ...}}):
  produce: stdin holds a JSON list of records (without "o"); they are sent in
           order to the named topic, at their partition and timestamp, with the
           codec given; prints {"acked": [records with "o" set from the
           delivery report]}.
  consume: reads the named partitions from a start (beginning, an offset, or a
           timestamp) up to the end offsets seen at start; prints
           {"records": [...]}.
  codecs:  prints which codecs the library can compress and decompress.

The Go test compares these records byte for byte with what other clients saw.
"""
import argparse
import base64
import json
import sys
import time
import traceback


def b64(b):
    return None if b is None else base64.b64encode(b).decode("ascii")


def unb64(s):
    return None if s is None else base64.b64decode(s)


_said_waiting = []


def waiting():
    """Tells the test (on stderr, once) that a poll came back empty: the
    consumer has caught up and its next fetch waits for new records."""
    if not _said_waiting:
        _said_waiting.append(True)
        sys.stderr.write("e2e: waiting for records\n")
        sys.stderr.flush()


def fail(exc):
    out = {"error": {"type": type(exc).__name__, "msg": str(exc)}}
    print(json.dumps(out))
    traceback.print_exc(file=sys.stderr)
    sys.exit(3)


# ---------------------------------------------------------------- python3-kafka

def kp_codecs():
    from kafka import codec
    return {"gzip": codec.has_gzip(), "snappy": codec.has_snappy(),
            "lz4": codec.has_lz4(), "zstd": codec.has_zstd()}


def kp_produce(a, recs):
    from kafka import KafkaProducer
    prod = KafkaProducer(bootstrap_servers=a.bootstrap,
                         compression_type=None if a.codec == "none" else a.codec,
                         acks="all", linger_ms=20, max_in_flight_requests_per_connection=1,
                         max_block_ms=int(a.timeout * 1000), request_timeout_ms=int(a.timeout * 1000))
    futs = []
    for r in recs:
        hdrs = [(h[0], unb64(h[1])) for h in r.get("h", [])]
        futs.append(prod.send(a.topic, value=unb64(r["v"]), key=unb64(r["k"]),
                              headers=hdrs, partition=r["p"], timestamp_ms=r.get("ts")))
    prod.flush(timeout=a.timeout)
    acked = []
    for r, f in zip(recs, futs):
        md = f.get(timeout=a.timeout)
        out = dict(r)
        out["p"], out["o"] = md.partition, md.offset
        acked.append(out)
    prod.close(timeout=a.timeout)
    return {"acked": acked}


def kp_consume(a):
    from kafka import KafkaConsumer, TopicPartition
    kw = {}
    if a.fetch_bytes:
        kw = {"fetch_max_bytes": a.fetch_bytes, "max_partition_fetch_bytes": a.fetch_bytes}
    cons = KafkaConsumer(bootstrap_servers=a.bootstrap, group_id=None,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         request_timeout_ms=int(a.timeout * 1000), **kw)
    tps = [TopicPartition(a.topic, p) for p in a.partitions]
    cons.assign(tps)
    end = cons.end_offsets(tps)
    if a.wait_end:
        end = {tp: a.wait_end for tp in tps}
    if a.from_ts is not None:
        found = cons.offsets_for_times({tp: a.from_ts for tp in tps})
        for tp in tps:
            cons.seek(tp, found[tp].offset if found[tp] is not None else end[tp])
    elif a.from_offset is not None:
        for tp in tps:
            cons.seek(tp, a.from_offset)
    else:
        cons.seek_to_beginning(*tps)
    out = []
    deadline = time.time() + a.timeout
    while any(cons.position(tp) < end[tp] for tp in tps):
        if time.time() > deadline:
            raise TimeoutError("positions %s, end %s" % (
                {tp.partition: cons.position(tp) for tp in tps},
                {tp.partition: end[tp] for tp in tps}))
        polled = cons.poll(timeout_ms=500)
        if not polled:
            waiting()
        for tp, msgs in polled.items():
            for m in msgs:
                if m.offset >= end[tp]:
                    continue
                out.append({"p": m.partition, "o": m.offset, "ts": m.timestamp,
                            "tstype": m.timestamp_type, "k": b64(m.key),
                            "v": b64(m.value),
                            "h": [[k, b64(v)] for k, v in (m.headers or [])]})
    cons.close()
    return {"records": out}


# ------------------------------------------------------ python3-confluent-kafka

def ck_codecs():
    # librdkafka is built with every codec; report what it says it has.
    import confluent_kafka  # noqa: F401 (fails here if the module is missing)
    return {"gzip": True, "snappy": True, "lz4": True, "zstd": True}


def ck_produce(a, recs):
    from confluent_kafka import Producer
    prod = Producer({"bootstrap.servers": a.bootstrap, "compression.type": a.codec,
                     "acks": "all", "linger.ms": 20, "enable.idempotence": True,
                     "message.timeout.ms": int(a.timeout * 1000)})
    acked = [None] * len(recs)
    errs = []

    def report(i):
        def cb(err, msg):
            if err is not None:
                errs.append(str(err))
                return
            out = dict(recs[i])
            out["p"], out["o"] = msg.partition(), msg.offset()
            acked[i] = out
        return cb

    for i, r in enumerate(recs):
        hdrs = [(h[0], unb64(h[1])) for h in r.get("h", [])]
        kw = {}
        if r.get("ts") is not None:
            kw["timestamp"] = r["ts"]
        prod.produce(a.topic, value=unb64(r["v"]), key=unb64(r["k"]), partition=r["p"],
                     headers=hdrs, on_delivery=report(i), **kw)
        prod.poll(0)
    left = prod.flush(a.timeout)
    if left or errs:
        raise RuntimeError("undelivered %d, errors %s" % (left, errs))
    return {"acked": acked}


def ck_consume(a):
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING, KafkaException
    conf = {"bootstrap.servers": a.bootstrap, "group.id": "e2e-unused",
            "enable.auto.commit": False, "enable.auto.offset.store": False}
    if a.fetch_bytes:
        conf.update({"fetch.max.bytes": a.fetch_bytes, "max.partition.fetch.bytes": a.fetch_bytes,
                     "message.max.bytes": a.fetch_bytes})
    cons = Consumer(conf)
    tps = [TopicPartition(a.topic, p) for p in a.partitions]
    end = {}
    for tp in tps:
        lo, hi = cons.get_watermark_offsets(tp, timeout=a.timeout)
        end[tp.partition] = a.wait_end or hi
    if a.from_ts is not None:
        found = cons.offsets_for_times([TopicPartition(a.topic, p, a.from_ts) for p in a.partitions],
                                       timeout=a.timeout)
        for tp in found:
            if tp.error is not None:
                raise KafkaException(tp.error)
        start = {tp.partition: (tp.offset if tp.offset >= 0 else end[tp.partition]) for tp in found}
    elif a.from_offset is not None:
        start = {p: a.from_offset for p in a.partitions}
    else:
        start = {p: OFFSET_BEGINNING for p in a.partitions}
    cons.assign([TopicPartition(a.topic, p, start[p]) for p in a.partitions])
    pos = {p: (start[p] if start[p] >= 0 else 0) for p in a.partitions}
    out = []
    deadline = time.time() + a.timeout
    while any(pos[p] < end[p] for p in a.partitions):
        if time.time() > deadline:
            raise TimeoutError("positions %s, end %s" % (pos, end))
        m = cons.poll(0.5)
        if m is None:
            waiting()
            continue
        if m.error() is not None:
            raise KafkaException(m.error())
        if m.offset() >= end[m.partition()]:
            continue
        tstype, ts = m.timestamp()
        out.append({"p": m.partition(), "o": m.offset(), "ts": ts, "tstype": tstype - 1,
                    "k": b64(m.key()), "v": b64(m.value()),
                    "h": [[k, b64(v)] for k, v in (m.headers() or [])]})
        pos[m.partition()] = m.offset() + 1
    cons.close()
    return {"records": out}


# ------------------------------------------------------------------ stream

def stream(a):
    """Produces "<run>-<seq>" values round-robin over the partitions until
    --count are sent, printing one JSON line per acknowledged record as soon
    as its delivery report arrives: the crash test kills the broker midway
    and takes these lines as the acknowledged set."""
    def report(p, o, v):
        sys.stdout.write(json.dumps({"p": p, "o": o, "v": v}) + "\n")
        sys.stdout.flush()

    if a.lib == "kafka":
        from kafka import KafkaProducer
        prod = KafkaProducer(bootstrap_servers=a.bootstrap, acks="all", linger_ms=5,
                             max_block_ms=int(a.timeout * 1000),
                             request_timeout_ms=int(a.timeout * 1000))
        for seq in range(a.count):
            v = "%s-%08d" % (a.run, seq)
            f = prod.send(a.topic, value=v.encode(), partition=seq % len(a.partitions))
            f.add_callback(lambda md, v=v: report(md.partition, md.offset, v))
        prod.flush()
    else:
        from confluent_kafka import Producer
        prod = Producer({"bootstrap.servers": a.bootstrap, "acks": "all", "linger.ms": 5,
                         "enable.idempotence": True})

        def cb(err, msg):
            if err is None:
                report(msg.partition(), msg.offset(), msg.value().decode())

        for seq in range(a.count):
            v = "%s-%08d" % (a.run, seq)
            while True:
                try:
                    prod.produce(a.topic, value=v.encode(), partition=seq % len(a.partitions), on_delivery=cb)
                    break
                except BufferError:
                    prod.poll(0.1)
            prod.poll(0)
        prod.flush()
    return {"done": a.count}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib", choices=["kafka", "confluent"])
    ap.add_argument("cmd", choices=["produce", "consume", "codecs", "stream"])
    ap.add_argument("--bootstrap")
    ap.add_argument("--topic")
    ap.add_argument("--codec", default="none")
    ap.add_argument("--partitions", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    ap.add_argument("--from-offset", type=int)
    ap.add_argument("--from-ts", type=int)
    ap.add_argument("--timeout", type=float, default=30)  # seconds
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--wait-end", type=int, default=0,
                    help="read until every partition reaches this offset, waiting for records to arrive")
    ap.add_argument("--fetch-bytes", type=int, default=0,
                    help="cap fetch sizes (per partition and per response)")
    ap.add_argument("--run", default="run1")
    a = ap.parse_args()
    try:
        if a.cmd == "stream":
            res = stream(a)
        elif a.cmd == "codecs":
            res = kp_codecs() if a.lib == "kafka" else ck_codecs()
        elif a.cmd == "produce":
            recs = json.load(sys.stdin)
            res = (kp_produce if a.lib == "kafka" else ck_produce)(a, recs)
        else:
            res = (kp_consume if a.lib == "kafka" else ck_consume)(a)
    except Exception as e:  # reported to the Go test, which asserts on it
        fail(e)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
