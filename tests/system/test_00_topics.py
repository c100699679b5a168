"""Topic provisioning: one declaration, created through the Admin API on a real broker,
existing topics left as they are, and a service that refuses to start without its topics."""

import os
import subprocess

import pytest

from conftest import BIN, BROKER_FACTS, Proc, existing_topics, service_env, wait_for

DECLARED = {  # libcommon/topics.c
    "orders": (6, None), "stock.depleted": (6, None), "stock.replenished": (6, None),
    "retry": (3, None), "dead-letter": (3, "1209600000"), "bulletins": (3, "2592000000"),
}

external = pytest.mark.skipif(os.environ.get("DOZEN_TEST_BROKER") != "external",
                              reason="needs a real Kafka broker (CreateTopics, "
                                     "DescribeConfigs): runs in the Apache Kafka pass")


def describe(bootstrap, names):
    from confluent_kafka.admin import AdminClient, ConfigResource
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(timeout=10)
    futures = admin.describe_configs([ConfigResource("topic", n) for n in names])
    out = {}
    for res, fut in futures.items():
        cfg = fut.result(timeout=10)
        t = md.topics[res.name]
        out[res.name] = {
            "partitions": len(t.partitions),
            "replication": len(t.partitions[0].replicas),
            "retention.ms": cfg["retention.ms"].value,
            "cleanup.policy": cfg["cleanup.policy"].value,
        }
    return out


@external
def test_sales_created_every_declared_topic(broker):
    before = BROKER_FACTS["topics_before"]
    assert not (before & set(DECLARED)), f"the broker was not fresh: {before}"
    live = describe(broker, list(DECLARED))
    for name, (partitions, retention) in DECLARED.items():
        assert live[name]["partitions"] == partitions, name
        assert live[name]["replication"] == 1, name
        assert live[name]["cleanup.policy"] == "delete", name
        if retention is not None:
            assert live[name]["retention.ms"] == retention, name


@external
def test_existing_topic_is_left_as_it_is(stack, broker):
    from confluent_kafka.admin import AdminClient, ConfigResource
    admin = AdminClient({"bootstrap.servers": broker})
    for fut in admin.alter_configs([ConfigResource("topic", "retry",
                                                   set_config={"retention.ms": "3600000"})
                                    ]).values():
        fut.result(timeout=10)
    wait_for(lambda: describe(broker, ["retry"])["retry"]["retention.ms"] == "3600000", 10,
             "the altered retention")
    stack.sales().start(timeout=60)
    assert describe(broker, ["retry"])["retry"]["retention.ms"] == "3600000"


@external
def test_dozenctl_topics_shows_the_live_configuration(broker):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    out = subprocess.run([os.path.join(BIN, "dozenctl"), "topics"],
                         env=dict(env, KAFKA_BOOTSTRAP=broker), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = {l.split()[0]: l for l in out.stdout.splitlines()}
    assert "retention.ms=1209600000" in lines["dead-letter"]
    assert "partitions=6" in lines["orders"] and "replication=1" in lines["orders"]
    assert "cleanup.policy=delete" in lines["orders"]


def test_sales_refuses_to_start_without_a_topic(migrated, workdir):
    """The dev broker cannot create topics (no CreateTopics): with one left out, sales must
    stop at start-up and name it."""
    addr_file = os.path.join(workdir, "partial.addr")
    partial = Proc("devbroker", dict(os.environ),
                   ["--addr-file", addr_file, "--skip-topic", "stock.depleted"],
                   workdir).start()
    try:
        wait_for(lambda: os.path.exists(addr_file) and open(addr_file).read().strip(), 10,
                 "the partial dev broker")
        bootstrap = open(addr_file).read().strip()
        assert "stock.depleted" not in existing_topics(bootstrap)
        out = subprocess.run([os.path.join(BIN, "sales")],
                             env=service_env(migrated, bootstrap, TOPICS_WAIT="2s"),
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert "stock.depleted" in out.stderr and "missing" in out.stderr
    finally:
        assert partial.stop() == 0
