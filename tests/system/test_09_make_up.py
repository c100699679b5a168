"""tools/stack.sh, the body of `make up` / `make down`: starts everything, is harmless when
run twice, keeps PostgreSQL's data across down/up, and stops everything it started."""

import os
import shutil
import subprocess
import tempfile

import pytest
import requests

from conftest import BIN, ROOT, free_port


def stack(cmd, env):
    return subprocess.run([os.path.join(ROOT, "tools", "stack.sh"), cmd], env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture
def run_env():
    run_dir = tempfile.mkdtemp(prefix="dozen-up-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env.update(RUN_DIR=run_dir, DOZEN_BIN=BIN, PGPORT=str(free_port()),
               SALES_PORT=str(free_port()), STOCK_PORT=str(free_port()))
    if os.environ.get("DOZEN_TEST_BROKER") == "external":
        # `KAFKA_BOOTSTRAP=host:port make up`: any existing cluster instead of the dev broker.
        env["KAFKA_BOOTSTRAP"] = os.environ["KAFKA_BOOTSTRAP"]
    yield env
    stack("down", env)
    shutil.rmtree(run_dir, ignore_errors=True)


def read_env(run_dir):
    out = {}
    with open(os.path.join(run_dir, "env")) as f:
        for line in f:
            k, v = line.strip().removeprefix("export ").split("=", 1)
            out[k] = v
    return out


def pids(run_dir):
    d = os.path.join(run_dir, "pids")
    return {f: open(os.path.join(d, f)).read().strip() for f in sorted(os.listdir(d))}


def test_up_twice_down_up_keeps_data(run_env):
    run_dir = run_env["RUN_DIR"]
    first = stack("up", run_env)
    assert first.returncode == 0, first.stdout + first.stderr
    env = read_env(run_dir)
    assert set(env) >= {"DATABASE_URL", "KAFKA_BOOTSTRAP", "ADMIN_TOKEN", "SALES_URL",
                        "STOCK_URL"}
    assert env["SALES_URL"] in first.stdout
    if "KAFKA_BOOTSTRAP" in run_env:
        assert env["KAFKA_BOOTSTRAP"] == run_env["KAFKA_BOOTSTRAP"]
        assert not os.path.exists(os.path.join(run_dir, "pids", "devbroker.pid"))
    r = requests.post(env["SALES_URL"] + "/orders", json={"sku": "glazed", "quantity": 2},
                      timeout=5)
    assert r.status_code == 201, r.text
    level = r.json()["remaining"]
    assert requests.get(env["STOCK_URL"] + "/inventory/glazed", timeout=5).json() == \
        {"sku": "glazed", "quantity": level}
    for sku in ("chocolate", "strawberry"):
        assert requests.get(f"{env['STOCK_URL']}/inventory/{sku}",
                            timeout=5).json()["quantity"] > 0

    before = pids(run_dir)
    second = stack("up", run_env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert pids(run_dir) == before, "a second make up restarted something"
    assert "started" not in second.stdout

    down = stack("down", run_env)
    assert down.returncode == 0, down.stderr
    for pid in before.values():
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} still running"
    with pytest.raises(requests.ConnectionError):
        requests.get(env["SALES_URL"] + "/healthz", timeout=2)

    again = stack("up", run_env)
    assert again.returncode == 0, again.stdout + again.stderr
    env = read_env(run_dir)
    assert requests.get(env["STOCK_URL"] + "/inventory/glazed",
                        timeout=5).json()["quantity"] == level, "data lost across down/up"
