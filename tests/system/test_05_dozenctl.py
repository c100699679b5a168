"""dozenctl: topics and tail, against the broker the tests use."""

import os
import subprocess

import requests

from conftest import BIN, TOPICS, events_for, read_topic


def dozenctl(args, env, cwd=None, timeout=30):
    return subprocess.run([os.path.join(BIN, "dozenctl")] + args, env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env.update(extra)
    return env


def test_topics_lists_every_project_topic(broker):
    out = dozenctl(["topics"], clean_env(KAFKA_BOOTSTRAP=broker))
    assert out.returncode == 0, out.stderr
    for t in TOPICS:
        assert t in out.stdout
    assert "MISSING" not in out.stdout


def test_tail_prints_records_with_cloudevents_headers(sales, broker, make_sku):
    sku = make_sku(5)
    r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5)
    assert r.status_code == 201
    oid = r.json()["order_id"]
    read_topic(broker, "orders", until=lambda rs: events_for(rs, "order_id", [oid]))

    out = dozenctl(["tail", "orders", "--from-beginning", "--exit"],
                   clean_env(KAFKA_BOOTSTRAP=broker))
    assert out.returncode == 0, out.stderr
    [line] = [l for l in out.stdout.splitlines() if oid in l]
    assert f"key={sku}" in line
    assert "ce_type=order.completed" in line
    assert "ce_specversion=1.0" in line
    assert "partition=" in line and "offset=" in line

    out = dozenctl(["tail", "orders", "--from-beginning", "--max", "1"],
                   clean_env(KAFKA_BOOTSTRAP=broker))
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 1


def test_reads_bootstrap_from_run_env(broker, tmp_path):
    (tmp_path / ".run").mkdir()
    (tmp_path / ".run" / "env").write_text(f"export KAFKA_BOOTSTRAP={broker}\n")
    out = dozenctl(["topics"], clean_env(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "orders" in out.stdout


def test_errors_are_clear(broker, tmp_path):
    out = dozenctl(["tail", "no.such.topic", "--exit"], clean_env(KAFKA_BOOTSTRAP=broker))
    assert out.returncode == 1 and "no.such.topic" in out.stderr
    out = dozenctl(["frobnicate"], clean_env(KAFKA_BOOTSTRAP=broker))
    assert out.returncode == 2
    out = dozenctl(["tail", "orders", "--max", "abc"], clean_env(KAFKA_BOOTSTRAP=broker))
    assert out.returncode == 2
    # A copy of the program, so that neither ./.run/env nor <bin>/../.run/env exists
    # (a developer's own `make up` leaves one next to bin/).
    import shutil
    (tmp_path / "bin").mkdir()
    shutil.copy(os.path.join(BIN, "dozenctl"), tmp_path / "bin" / "dozenctl")
    out = subprocess.run([str(tmp_path / "bin" / "dozenctl"), "topics"], env=clean_env(),
                         cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "KAFKA_BOOTSTRAP" in out.stderr
