"""tools/stack.sh, the body of `make up` / `make down`: starts everything, is harmless when
run twice, keeps PostgreSQL's data across down/up, and stops everything it started; the
notifier is wired to the open-data and SMS stand-ins and gets the caller's BULLETIN_*."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import BIN, ROOT, Service, free_port, wait_for
from test_28_prometheus import orders_p90, prometheus, query  # noqa: F401 (a fixture)


def stack(cmd, env):
    return subprocess.run([os.path.join(ROOT, "tools", "stack.sh"), cmd], env=env,
                          capture_output=True, text=True, timeout=180)


# One run directory for the whole file: each test starts with `up` in the settings it
# needs, which on a running stack restarts only what those settings change (itself a
# guarantee of stack.sh); a fresh PostgreSQL cluster per test only cost time.
@pytest.fixture(scope="module")
def run_env():
    run_dir = tempfile.mkdtemp(prefix="dozen-up-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env = {k: v for k, v in env.items()
           if not k.startswith(("BULLETIN_", "OPEN_DATA_", "SMS_GATEWAY_", "LEGACY_FACTORY_",
                                "FACTORY_CALLBACK_URL"))}
    env.update(RUN_DIR=run_dir, DOZEN_BIN=BIN)
    # Every port free, so that the test never meets `make up` or another test's programs.
    for var in PORT_VARS:
        env[var] = str(free_port())
    env["BULLETIN_CRON"] = "17 4 * * *"
    if os.environ.get("DOZEN_TEST_BROKER") == "external":
        # `KAFKA_BOOTSTRAP=host:port make up`: any existing cluster instead of the dev broker.
        env["KAFKA_BOOTSTRAP"] = os.environ["KAFKA_BOOTSTRAP"]
    yield env
    stack("down", env)
    shutil.rmtree(run_dir, ignore_errors=True)


# Every port tools/stack.sh listens on, and the URL .run/env gives for each program.
PORT_VARS = ("PGPORT", "SALES_PORT", "STOCK_PORT", "FACTORY_PORT", "NOTIFIER_PORT",
             "RETRY_PORT", "LEGACY_FACTORY_PORT", "OPEN_DATA_PORT", "SMS_GATEWAY_PORT")
URLS = {"SALES_URL": "SALES_PORT", "STOCK_URL": "STOCK_PORT", "FACTORY_URL": "FACTORY_PORT",
        "NOTIFIER_URL": "NOTIFIER_PORT", "RETRY_URL": "RETRY_PORT",
        "LEGACY_FACTORY_URL": "LEGACY_FACTORY_PORT", "OPEN_DATA_URL": "OPEN_DATA_PORT",
        "SMS_GATEWAY_URL": "SMS_GATEWAY_PORT"}


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


def environ(run_dir, name):
    """The environment the process stack.sh recorded as NAME runs with."""
    with open(os.path.join(run_dir, "pids", name + ".pid")) as f:
        pid = f.read().strip()
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read().decode()
    return dict(e.split("=", 1) for e in raw.split("\0") if "=" in e)


def test_up_twice_down_up_keeps_data(run_env):
    run_dir = run_env["RUN_DIR"]
    first = stack("up", run_env)
    assert first.returncode == 0, first.stdout + first.stderr
    env = read_env(run_dir)
    assert set(env) >= {"DATABASE_URL", "KAFKA_BOOTSTRAP", "ADMIN_TOKEN"} | set(URLS)
    for url, port in URLS.items():
        assert env[url] == f"http://127.0.0.1:{run_env[port]}", url
        assert env[url] in first.stdout, url
        assert requests.get(env[url] + "/readyz", timeout=5).status_code == 200, url
    assert set(pids(run_dir)) >= {"notifier.pid", "open-data.pid", "sms-gateway.pid"}

    # The notifier reads the open-data stand-in, sends through the SMS stand-in with the
    # account the stand-in takes, and gets the caller's BULLETIN_* as they are.
    notifier, gateway = environ(run_dir, "notifier"), environ(run_dir, "sms-gateway")
    assert notifier["BULLETIN_SOURCE_URL"] == env["OPEN_DATA_URL"] + "/daily"
    assert notifier["SMS_GATEWAY_URL"] == env["SMS_GATEWAY_URL"]
    assert notifier["ADMIN_TOKEN"] == env["ADMIN_TOKEN"]
    assert notifier["BULLETIN_CRON"] == "17 4 * * *"
    for var in ("SMS_ACCOUNT_SID", "SMS_AUTH_TOKEN"):
        assert notifier[var] == gateway[var], var
    sid, token = gateway["SMS_ACCOUNT_SID"], gateway["SMS_AUTH_TOKEN"]
    r = requests.post(f"{env['SMS_GATEWAY_URL']}/2010-04-01/Accounts/{sid}/Messages.json",
                      auth=(sid, token), timeout=5,
                      data={"To": "+821012345678", "From": notifier["SMS_FROM"], "Body": "up"})
    assert r.status_code == 201, r.text
    daily = requests.get(env["OPEN_DATA_URL"] + "/daily", timeout=5)
    assert daily.status_code == 200 and set(daily.json()) >= {"date", "confirmed"}, daily.text
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

    # Another BULLETIN_* restarts the notifier, and nothing else.
    third = stack("up", dict(run_env, BULLETIN_CRON="18 4 * * *"))
    assert third.returncode == 0, third.stdout + third.stderr
    after = pids(run_dir)
    assert {f for f in before if after.get(f) != before[f]} == {"notifier.pid"}, third.stdout
    assert environ(run_dir, "notifier")["BULLETIN_CRON"] == "18 4 * * *"
    before = after

    down = stack("down", run_env)
    assert down.returncode == 0, down.stderr
    for pid in before.values():
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} still running"
    for url in URLS:
        with pytest.raises(requests.ConnectionError):
            requests.get(env[url] + "/healthz", timeout=2)

    again = stack("up", run_env)
    assert again.returncode == 0, again.stdout + again.stderr
    env = read_env(run_dir)
    assert requests.get(env["STOCK_URL"] + "/inventory/glazed",
                        timeout=5).json()["quantity"] == level, "data lost across down/up"


def test_up_again_from_a_shell_that_sourced_run_env(run_env):
    """`. .run/env; make up` (the README's tour) must not take the stack's own broker for an
    external cluster; a dev broker that died is replaced loudly, with every service."""
    run_dir = run_env["RUN_DIR"]
    first = stack("up", run_env)
    assert first.returncode == 0, first.stdout + first.stderr
    mode = os.stat(os.path.join(run_dir, "env")).st_mode & 0o777
    assert mode == 0o600, f".run/env holds secrets but has mode {oct(mode)}"
    env = read_env(run_dir)
    sourced = dict(run_env, **env)  # what a shell that ran `. .run/env` passes on
    before = pids(run_dir)

    second = stack("up", sourced)
    assert second.returncode == 0, second.stdout + second.stderr
    assert pids(run_dir) == before, "make up from a sourced shell restarted something"
    assert read_env(run_dir)["KAFKA_BOOTSTRAP"] == env["KAFKA_BOOTSTRAP"]
    r = requests.post(env["SALES_URL"] + "/orders", json={"sku": "glazed", "quantity": 1},
                      timeout=5)
    assert r.status_code == 201, r.text
    for name in before:
        with open(f"/proc/{before[name]}/cmdline", "rb") as f:
            assert env["ADMIN_TOKEN"].encode() not in f.read(), f"{name}: token on its command line"

    if "KAFKA_BOOTSTRAP" in run_env:
        return  # an external cluster: nothing of the dev broker's to check
    assert "own broker" in second.stdout
    os.kill(int(before["devbroker.pid"]), 9)
    third = stack("up", sourced)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "WARNING" in third.stdout and "EMPTY" in third.stdout, third.stdout
    after = pids(run_dir)
    assert all(after[f] != before[f] for f in before), (before, after)
    env = read_env(run_dir)
    assert env["KAFKA_BOOTSTRAP"] != sourced["KAFKA_BOOTSTRAP"]
    r = requests.post(env["SALES_URL"] + "/orders", json={"sku": "glazed", "quantity": 1},
                      timeout=5)
    assert r.status_code == 201, r.text


def test_secrets_are_owner_only_and_never_on_a_command_line(run_env):
    """.run/admin_token and .run/env are 0600 and every other file under RUN_DIR that holds
    the admin token or the database URL with its password is readable by its owner only;
    neither is on the command line of any process on the machine (issue 11, point 8)."""
    run_dir = run_env["RUN_DIR"]
    up = stack("up", run_env)
    assert up.returncode == 0, up.stdout + up.stderr
    env = read_env(run_dir)
    secrets = [env["ADMIN_TOKEN"].encode(), env["DATABASE_URL"].encode()]
    assert len(secrets[0]) >= 16 and b":" in secrets[1].split(b"@")[0].split(b"//")[1]
    for name in ("admin_token", "env"):
        mode = os.stat(os.path.join(run_dir, name)).st_mode & 0o777
        assert mode == 0o600, f".run/{name} holds a secret but has mode {oct(mode)}"
    holders = []
    pg = os.path.join(run_dir, "pg")  # PostgreSQL's own data directory: 0700, its business
    for root, dirs, files in os.walk(run_dir):
        dirs[:] = [d for d in dirs if os.path.join(root, d) != pg]
        for f in files:
            path = os.path.join(root, f)
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            with open(path, "rb") as fh:
                data = fh.read(4 << 20)
            if any(sec in data for sec in secrets):
                holders.append(os.path.relpath(path, run_dir))
                mode = os.stat(path).st_mode & 0o777
                assert mode & 0o077 == 0, f"{path} holds a secret but has mode {oct(mode)}"
    assert sorted(holders) == ["admin_token", "env"], holders
    seen = 0
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        seen += 1
        for sec in secrets:
            assert sec not in cmdline, f"pid {pid} has a secret on its command line: " \
                f"{cmdline.replace(sec, b'<secret>')[:200]!r}"
    assert seen >= len(pids(run_dir)), "fewer processes than the stack's own"


def test_a_real_feed_is_passed_on_and_its_stand_in_not_started(run_env):
    """BULLETIN_SOURCE_URL names the real feed: the notifier gets it with its format and key
    (through its environment only), the open-data stand-in is not started, and the key is
    in no file of RUN_DIR; without it the stand-in serves the asked format (issue 12)."""
    run_dir = run_env["RUN_DIR"]
    key = "real+Key/For==Test"
    real = dict(run_env, BULLETIN_SOURCE_URL="http://127.0.0.1:1/getCovid19InfStateJson",
                BULLETIN_SOURCE_FORMAT="datagokr-covid19", BULLETIN_SOURCE_KEY=key)
    up = stack("up", real)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "open-data.pid" not in pids(run_dir) or not os.path.exists(
        f"/proc/{pids(run_dir)['open-data.pid']}")
    n = environ(run_dir, "notifier")
    assert n["BULLETIN_SOURCE_URL"] == real["BULLETIN_SOURCE_URL"]
    assert n["BULLETIN_SOURCE_FORMAT"] == "datagokr-covid19" and n["BULLETIN_SOURCE_KEY"] == key
    with open(f"/proc/{pids(run_dir)['notifier.pid']}/cmdline", "rb") as f:
        assert key.encode() not in f.read()
    for d, _, files in os.walk(run_dir):
        for name in files:
            path = os.path.join(d, name)
            if os.path.islink(path) or "/pg/" in path:
                continue
            with open(path, "rb") as f:
                assert key.encode() not in f.read(), f"the key is in {path}"

    # Back to the stand-in, in the portal's format: started, and the notifier reads it.
    local = dict(run_env, BULLETIN_SOURCE_FORMAT="datagokr-covid19")
    up = stack("up", local)
    assert up.returncode == 0, up.stdout + up.stderr
    env = read_env(run_dir)
    n = environ(run_dir, "notifier")
    assert n["BULLETIN_SOURCE_URL"] == (env["OPEN_DATA_URL"] +
                                        "/openapi/service/rest/Covid19/getCovid19InfStateJson")
    assert n["BULLETIN_SOURCE_KEY"]
    r = requests.get(n["BULLETIN_SOURCE_URL"], params={"serviceKey": n["BULLETIN_SOURCE_KEY"]},
                     timeout=5)
    assert r.status_code == 200 and "<resultCode>00</resultCode>" in r.text, r.text


def test_a_real_legacy_factory_is_used_and_the_stand_in_not_started(run_env):
    """LEGACY_FACTORY_URL naming another factory (here a second stand-in playing the real
    one) is passed on, with the factory settings; no stand-in is started, and a restock goes
    through that factory to the callback URL."""
    run_dir = run_env["RUN_DIR"]
    real_port = free_port()
    real = Service("legacy-factory", dict(run_env, LEGACY_FACTORY_PORT=str(real_port),
                                          FACTORY_DELAY_MS="200"), real_port, run_dir)
    real.start()
    try:
        env = dict(run_env, LEGACY_FACTORY_URL=real.url + "/", LEGACY_FACTORY_ID="FF-42",
                   LEGACY_FACTORY_REQUESTER="ops-team")
        up = stack("up", env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "legacy-factory.pid" not in pids(run_dir)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{run_env['LEGACY_FACTORY_PORT']}/healthz", timeout=2)
        assert read_env(run_dir)["LEGACY_FACTORY_URL"] == real.url
        factory = environ(run_dir, "factory")
        assert factory["LEGACY_FACTORY_URL"] == real.url
        assert factory["LEGACY_FACTORY_ID"] == "FF-42"
        assert real.url in up.stdout
        urls = read_env(run_dir)
        sku = "old-fashioned"
        level = requests.get(f"{urls['STOCK_URL']}/inventory/{sku}", timeout=5).json()["quantity"]
        r = requests.post(urls["SALES_URL"] + "/orders", json={"sku": sku, "quantity": level},
                          timeout=5)
        assert r.status_code == 201, r.text
        requests.post(urls["SALES_URL"] + "/orders", json={"sku": sku, "quantity": 1}, timeout=5)
        wait_for(lambda: requests.get(f"{urls['STOCK_URL']}/inventory/{sku}",
                                      timeout=5).json()["quantity"] > 0, 30,
                 "the restock through the configured factory")
        [mf] = requests.get(real.url + "/admin/manufactures", params={"product_id": sku},
                            timeout=5).json()["manufactures"]
        assert mf["factory_id"] == "FF-42" and mf["requester"] == "ops-team"
        assert mf["status"] == "delivered"
        # Back to the stand-in when the environment names no factory.
        again = stack("up", run_env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "legacy-factory.pid" in pids(run_dir)
        assert environ(run_dir, "factory")["LEGACY_FACTORY_URL"] == \
            f"http://127.0.0.1:{run_env['LEGACY_FACTORY_PORT']}"
    finally:
        real.stop()


def test_a_real_sms_provider_is_passed_on_and_the_stand_in_not_started(run_env):
    """SMS_GATEWAY_URL naming another provider, with its account, token and sender: the
    notifier gets them (the token through its environment only: no command line, no file
    under the run directory), SMS_RATE too, and the SMS stand-in is not started. Without
    the sender, `up` refuses and says what is missing."""
    run_dir = run_env["RUN_DIR"]
    token = "real-provider-token-0123456789"
    real = dict(run_env, SMS_GATEWAY_URL="http://127.0.0.1:9", SMS_ACCOUNT_SID="ACreal42",
                SMS_AUTH_TOKEN=token)
    refused = stack("up", real)
    assert refused.returncode != 0 and "set SMS_FROM too" in refused.stderr, refused.stderr
    up = stack("up", dict(real, SMS_FROM="+15005550006", SMS_RATE="3"))
    assert up.returncode == 0, up.stdout + up.stderr
    assert "sms-gateway.pid" not in pids(run_dir)
    assert "http://127.0.0.1:9" in up.stdout
    notifier = environ(run_dir, "notifier")
    assert notifier["SMS_GATEWAY_URL"] == "http://127.0.0.1:9"
    assert (notifier["SMS_ACCOUNT_SID"], notifier["SMS_AUTH_TOKEN"], notifier["SMS_FROM"],
            notifier["SMS_RATE"]) == ("ACreal42", token, "+15005550006", "3")
    # no status callbacks to loopback for a real provider unless asked for
    assert "SMS_STATUS_CALLBACK_URL" not in notifier
    assert read_env(run_dir)["SMS_GATEWAY_URL"] == "http://127.0.0.1:9"
    for root, _, files in os.walk(run_dir):
        for name in files:
            path = os.path.join(root, name)
            if "/pg/" in path + "/" or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                assert token.encode() not in f.read(), f"the SMS token is in {path}"
    for pid in pids(run_dir).values():
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert token.encode() not in f.read(), f"the SMS token is on a command line"


# The five services of `make up`, each with its port variable.
SERVICES = {"sales": "SALES_PORT", "stock": "STOCK_PORT", "factory": "FACTORY_PORT",
            "notifier": "NOTIFIER_PORT", "retry": "RETRY_PORT"}


def test_prometheus_scrapes_every_service_of_make_up(run_env, prometheus):  # noqa: F811
    """A real Prometheus server (Debian's prometheus package) scraping the services `make
    up` started, on their 127.0.0.1 ports, as issue 13 asks (test_28 scrapes a pytest
    stack): every target up, a consumer lag series, and a latency quantile of the orders
    route."""
    up = stack("up", run_env)
    assert up.returncode == 0, up.stdout + up.stderr
    env = read_env(run_env["RUN_DIR"])
    url = prometheus({name: "127.0.0.1:%s" % run_env[var] for name, var in SERVICES.items()})

    def all_up():
        got = {r["metric"]["job"]: r["value"][1] for r in query(url, "up")}
        return got if got == {name: "1" for name in SERVICES} else None
    wait_for(all_up, 30, "every service of make up to be up in Prometheus")

    lag_q = "max by (job, group, topic, partition) (dozen_consumer_lag_records)"
    found = {}
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and not ("lag" in found and "quantile" in found):
        r = requests.post(env["SALES_URL"] + "/orders", json={"sku": "glazed", "quantity": 1},
                          timeout=5)
        assert r.status_code in (201, 409), r.text
        lag = query(url, lag_q)
        if lag:
            found["lag"] = lag
        if (p90 := orders_p90(url)) is not None:
            found["quantile"] = p90
        time.sleep(0.2)  # pacing of the load, not synchronisation
    assert "lag" in found, "no dozen_consumer_lag_records series from the make up stack"
    assert {s["metric"]["job"] for s in found["lag"]} <= {"stock", "factory", "notifier",
                                                          "retry"}, found["lag"]
    assert all(float(s["value"][1]) >= 0 for s in found["lag"])
    assert "quantile" in found, "histogram_quantile of the orders route gave nothing"
    assert 0 < found["quantile"] < 10, found
