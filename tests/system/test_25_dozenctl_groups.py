"""dozenctl groups: per group its members and per partition committed offset, end offset and
lag; --max-lag for scripts. On Apache Kafka through ListGroups/DescribeGroups/OffsetFetch;
on the dev broker (no DescribeGroups) it says so and takes the members from /metrics."""

import json
import os
import subprocess

from confluent_kafka import Producer

from conftest import BIN, wait_assigned, wait_for

ON_KAFKA = os.environ.get("DOZEN_TEST_BROKER") == "external"


def groups(broker, *args, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    e.update(KAFKA_BOOTSTRAP=broker, **env)
    return subprocess.run([os.path.join(BIN, "dozenctl"), "groups", *args], env=e,
                          capture_output=True, text=True, timeout=60)


def partition0(broker, **env):
    out = groups(broker, "stock", "--json", **env)
    assert out.returncode == 0, out.stderr
    [g] = json.loads(out.stdout)
    assert g["group"] == "stock"
    found = [p for p in g["partitions"] if p["topic"] == "stock.replenished" and
             p["partition"] == 0]
    return (g, found[0]) if found else (g, None)


def produce(broker, n):
    p = Producer({"bootstrap.servers": broker})
    for i in range(n):
        p.produce("stock.replenished", key=b"groups-test", value=b"{}", partition=0)
    assert p.flush(10) == 0


def test_groups_shows_lag_and_max_lag_exit_status(stack, broker):
    stock = stack.stock()
    stock.start()
    wait_assigned(stock)
    produce(broker, 1)

    def caught_up():
        g, p = partition0(broker, STOCK_URL=stock.url)
        return p is not None and p["committed"] is not None and p["lag"] == 0 and (g, p)
    g, p = wait_for(caught_up, 60, "the stock group to commit what it read")
    assert p["end"] == p["committed"]
    if ON_KAFKA:
        assert g["state"] == "Stable"
        assert any("stock" in m["client_id"] for m in g["members"]), g
        assert p["member"] is not None
    else:
        assert g["state"] == "?" and g["members"] is None
        assert p["member"] == stock.url, "the member from the service's own /metrics"
    assert groups(broker, "stock", "--max-lag", "0").returncode == 0

    assert stock.stop() == 0
    produce(broker, 5)
    g, p = wait_for(lambda: (lambda gp: gp[1]["lag"] == 5 and gp)(partition0(broker)), 30,
                    "the lag of the five new records")
    assert p["end"] == p["committed"] + 5
    if ON_KAFKA:
        assert g["state"] == "Empty" and g["members"] == []
    out = groups(broker, "stock", "--max-lag", "4")
    assert out.returncode == 1 and "lags more than 4" in out.stderr
    assert groups(broker, "stock", "--max-lag", "5").returncode == 0

    human = groups(broker, "stock")
    assert human.returncode == 0, human.stderr
    assert "group=stock" in human.stdout
    assert f"stock.replenished/0 committed={p['committed']} end={p['end']} lag=5" in human.stdout
    if not ON_KAFKA:
        assert "DescribeGroups" in human.stderr, "the dev broker's limit is said"


def test_groups_lists_every_group(stack, broker):
    stock = stack.stock()
    stock.start()
    wait_assigned(stock)
    out = groups(broker)
    assert out.returncode == 0, out.stderr
    assert "group=stock " in out.stdout
    if not ON_KAFKA:
        assert "does not list or describe groups" in out.stderr


def test_groups_bad_arguments(broker):
    assert groups(broker, "--max-lag", "x").returncode == 2
    assert groups(broker, "--max-lag", "-1").returncode == 2
    assert groups(broker, "a", "b").returncode == 2
    assert groups(broker, "--frob").returncode == 2
    assert groups(broker, "").returncode == 2
