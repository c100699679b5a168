"""The migration runner: ordered, recorded, safe to run again; the seed never overwrites."""

import os
import subprocess

from conftest import BIN, ROOT


def migrate(url, *args):
    return subprocess.run([os.path.join(BIN, "dozen-migrate"), "--dir",
                           os.path.join(ROOT, "migrations")] + list(args),
                          env=dict(os.environ, DATABASE_URL=url), capture_output=True,
                          text=True, timeout=60)


def test_migrations_are_recorded_and_rerun_is_a_no_op(migrated):
    versions = [r[0] for r in migrated.query("SELECT version FROM schema_migrations "
                                             "ORDER BY version")]
    files = sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, "migrations"))
                   if f[:4].isdigit() and f.endswith(".sql"))
    assert versions == files
    out = migrate(migrated.url)
    assert out.returncode == 0, out.stderr
    assert "up to date" in out.stdout + out.stderr
    assert [r[0] for r in migrated.query("SELECT version FROM schema_migrations "
                                         "ORDER BY version")] == versions


def test_seed_adds_sample_products_without_overwriting(migrated):
    migrated.execute("INSERT INTO inventory (sku, quantity) VALUES ('glazed', 7) "
                     "ON CONFLICT (sku) DO UPDATE SET quantity = 7")
    out = migrate(migrated.url, "--seed", os.path.join(ROOT, "migrations", "seed.sql"))
    assert out.returncode == 0, out.stderr
    levels = dict(migrated.query("SELECT sku, quantity FROM inventory WHERE sku IN "
                                 "('glazed', 'chocolate', 'strawberry')"))
    assert levels["glazed"] == 7
    assert levels["chocolate"] > 0 and levels["strawberry"] > 0


def test_missing_database_url_is_a_clear_error():
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    out = subprocess.run([os.path.join(BIN, "dozen-migrate")], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0 and "DATABASE_URL" in out.stderr


def test_a_failing_migration_is_rolled_back(pg, tmp_path):
    import psycopg2
    pg.admin("DROP DATABASE IF EXISTS migfail")
    pg.admin("CREATE DATABASE migfail")
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE b (x int); SELECT nonsense FROM nowhere;")
    url = pg.superuser_url.rsplit("/", 1)[0] + "/migfail"
    out = subprocess.run([os.path.join(BIN, "dozen-migrate"), "--dir", str(tmp_path)],
                         env=dict(os.environ, DATABASE_URL=url), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1
    assert "0002_bad" in out.stdout + out.stderr
    with psycopg2.connect(url) as c:
        cur = c.cursor()
        cur.execute("SELECT version FROM schema_migrations")
        assert [r[0] for r in cur.fetchall()] == ["0001_ok"]
        cur.execute("SELECT to_regclass('b')")
        assert cur.fetchone()[0] is None
    c.close()
