"""Produce or consume with kafka-python or confluent-kafka-python, for the
integration tests: python3 pyclient.py LIB ADDR produce TOPIC N CODEC
or python3 pyclient.py LIB ADDR consume TOPIC N GROUP. Consume prints one
"partition offset key value" line per record and commits through the group."""
import sys

lib, addr, mode, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
arg = sys.argv[6]

if lib == "kafka-python":
    import kafka
    if mode == "produce":
        p = kafka.KafkaProducer(bootstrap_servers=addr, acks="all",
                                compression_type=None if arg == "none" else arg)
        for i in range(n):
            p.send(topic, key=b"k%d" % i, value=b"%s-%d" % (arg.encode(), i)).get(timeout=30)
        p.flush()
        p.close()
    else:
        c = kafka.KafkaConsumer(topic, bootstrap_servers=addr, group_id=arg,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                consumer_timeout_ms=30000)
        got = 0
        for m in c:
            print(m.partition, m.offset, m.key.decode(), m.value.decode(), flush=True)
            got += 1
            if got == n:
                break
        c.commit()
        c.close()
else:
    import confluent_kafka
    if mode == "produce":
        p = confluent_kafka.Producer({"bootstrap.servers": addr, "acks": "all",
                                      "enable.idempotence": True, "compression.type": arg})
        errors = []
        for i in range(n):
            p.produce(topic, key=b"k%d" % i, value=b"%s-%d" % (arg.encode(), i),
                      on_delivery=lambda err, msg: err and errors.append(err))
        p.flush(30)
        if errors:
            sys.exit("delivery failed: %s" % errors[0])
    else:
        c = confluent_kafka.Consumer({"bootstrap.servers": addr, "group.id": arg,
                                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic])
        got = 0
        while got < n:
            m = c.poll(30)
            if m is None:
                sys.exit("timed out after %d records" % got)
            if m.error():
                sys.exit(str(m.error()))
            print(m.partition(), m.offset(), m.key().decode(), m.value().decode(), flush=True)
            got += 1
        c.commit(asynchronous=False)
        c.close()
