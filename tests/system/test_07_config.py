"""Start-up configuration errors name the variable; services stop cleanly on SIGTERM."""

import os
import subprocess

from conftest import BIN, service_env


def run(name, env):
    return subprocess.run([os.path.join(BIN, name)], env=env, capture_output=True, text=True,
                          timeout=30)


def test_missing_and_bad_variables(migrated, broker):
    env = service_env(migrated, broker)
    del env["DATABASE_URL"]
    out = run("sales", env)
    assert out.returncode == 1 and "DATABASE_URL" in out.stderr

    out = run("sales", service_env(migrated, broker, SALES_PORT="eighty"))
    assert out.returncode == 1 and "SALES_PORT" in out.stderr and "eighty" in out.stderr

    out = run("sales", service_env(migrated, broker, SALES_PORT="70000"))
    assert out.returncode == 1 and "SALES_PORT" in out.stderr

    out = run("sales", service_env(migrated, broker, DB_POOL_SIZE="0"))
    assert out.returncode == 1 and "DB_POOL_SIZE" in out.stderr

    out = run("sales", service_env(migrated, broker, KAFKA_ACKS="banana"))
    assert out.returncode == 1 and "KAFKA_ACKS" in out.stderr

    out = run("stock", service_env(migrated, broker, ADMIN_TOKEN="short"))
    assert out.returncode == 1 and "ADMIN_TOKEN" in out.stderr


def test_clean_shutdown_on_sigterm(stack):
    s = stack.sales().start()
    assert s.stop() == 0
    assert "stopped" in s.log()
