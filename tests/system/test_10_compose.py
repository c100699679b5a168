"""docker-compose.yml, docker/Dockerfile, .env.example and .dockerignore checked against the
code they run: compose's own validation, the programs and variables each container gets, the
healthchecks and start order, the published ports, the Kafka topics, and the image's runtime
libraries. Nothing is started (there is no Docker engine on our machines): the facts come from
the files, the C sources and the binaries in DOZEN_BIN (which sources each binary links is read
from its DWARF compile units)."""

import fnmatch
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml

from conftest import BIN, ROOT

COMPOSE = os.path.join(ROOT, "docker-compose.yml")
DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")
ENV_EXAMPLE = os.path.join(ROOT, ".env.example")
DOCKERIGNORE = os.path.join(ROOT, ".dockerignore")
MAKEFILE = os.path.join(ROOT, "Makefile")

# Values a .env may set for the secrets the secrets one-shot otherwise generates.
TEST_SECRETS = {"POSTGRES_PASSWORD": "compose-test-password",
                "ADMIN_TOKEN": "compose-test-admin-token-0123"}
SECRETS_SH = os.path.join(ROOT, "docker", "secrets.sh")
SECRETS_DIR = "/run/dozen-secrets"
PROMETHEUS_YML = os.path.join(ROOT, "docker", "prometheus.yml")
DASHBOARD = os.path.join(ROOT, "docker", "grafana", "dashboards", "dozen.json")
STACK_SH = os.path.join(ROOT, "tools", "stack.sh")
# Conditions that wait for something real; plain `depends_on: [x]` only waits for a start.
CONDITIONS = {"service_healthy", "service_completed_successfully"}
# Provided by every Debian base image, so never in the runtime stage's package list.
BASE_PACKAGES = {"libc6"}
SANITIZER_LIBS = re.compile(r"^lib(asan|ubsan|lsan|tsan)\.so")


# ---------------------------------------------------------------------------------------
# Reading the files

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def compose():
    doc = yaml.safe_load(read(COMPOSE))
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict), \
        "docker-compose.yml has no services mapping"
    return doc


def dockerfile_stages():
    """The Dockerfile as a list of stages: {"from", "name", "instructions": [(op, args)]},
    continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", read(DOCKERFILE))
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, args = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            m = re.match(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", args.strip(), re.I)
            assert m, f"cannot read FROM {args}"
            stages.append({"from": m.group(1), "name": m.group(2), "instructions": []})
        else:
            assert stages, f"{op} before the first FROM"
            stages[-1]["instructions"].append((op, args.strip()))
    return stages


def dockerfile_env(stage):
    """The ENV names and values a stage sets (ENV K=V [K=V ...] form)."""
    env = {}
    for op, args in stage["instructions"]:
        if op == "ENV":
            for k, v in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|\S*)", args):
                env[k] = v.strip('"')
    return env


def apt_packages(stage):
    pkgs = set()
    for op, args in stage["instructions"]:
        if op == "RUN":
            for m in re.finditer(r"apt-get install\s+(.*?)(?:&&|;|$)", args):
                pkgs.update(w for w in m.group(1).split() if not w.startswith("-"))
    return pkgs


def makefile_programs():
    """Program names the Makefile builds (its PROGRAMS, printed by `make print-programs`)."""
    out = subprocess.run(["make", "-s", "--no-print-directory", "print-programs"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    names = set(out.split())
    assert names, "make print-programs named no program"
    return names


def linked_sources(program):
    """The project's source files linked into BIN/program (its DWARF compile units)."""
    path = os.path.join(BIN, program)
    out = subprocess.run(["readelf", "--debug-dump=info", "--dwarf-depth=1", path],
                         capture_output=True, text=True, check=True).stdout
    names, in_cu = [], False
    for line in out.splitlines():
        if "DW_TAG_compile_unit" in line:
            in_cu = True
        elif in_cu and "DW_AT_name" in line:
            names.append(line.rsplit(": ", 1)[-1].strip())
            in_cu = False
    sources = sorted({n for n in names if os.path.isfile(os.path.join(ROOT, n))})
    assert sources, f"{path} has no debug information naming our sources (built without -g?)"
    return sources


CFG_CALL = re.compile(r"\bcfg_(str|int|port|duration_ms|url)\s*\(\s*\"([A-Za-z_][A-Za-z0-9_]*)\"\s*,"
                      r"\s*([^,)]+)")
# A service's own port, as main.c declares it for svc_config_read (libcommon/svc_run.c,
# which reads the common settings with cfg_* calls the scan sees there):
# `.port_var = "SALES_PORT", .port_def = 8080`.
SPEC_PORT = re.compile(r"\.port_var\s*=\s*\"([A-Za-z_][A-Za-z0-9_]*)\"\s*,\s*\.port_def\s*=\s*(\d+)")
GETENV_CALL = re.compile(r"\b(?:secure_)?getenv\s*\(\s*\"([A-Za-z_][A-Za-z0-9_]*)\"\s*\)")


class ProgramEnv:
    """What a program reads from its environment, from the sources it links."""

    def __init__(self, program):
        self.program = program
        self.sources = linked_sources(program)
        self.names, self.required, self.ports = set(), set(), {}
        self.cfg_names = set()  # read through cfg_*, which also takes NAME_FILE
        self.kafka_passthrough = False
        for src in self.sources:
            text = read(os.path.join(ROOT, src))
            text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # commented-out code reads nothing
            for kind, name, default in CFG_CALL.findall(text):
                self.names.add(name)
                self.cfg_names.add(name)
                if kind in ("str", "url") and default.strip() == "NULL":
                    self.required.add(name)
                if kind == "port":
                    self.ports[name] = int(default.strip())
            for name, default in SPEC_PORT.findall(text):
                self.names.add(name)
                self.cfg_names.add(name)
                self.ports[name] = int(default)
            self.names.update(GETENV_CALL.findall(text))
            # libcommon/kafka.c: every KAFKA_<NAME> becomes a librdkafka property.
            if re.search(r"\"KAFKA_\"", text):
                self.kafka_passthrough = True

    def reads(self, name):
        if name.endswith("_FILE") and name[:-len("_FILE")] in self.cfg_names:
            return True  # libcommon/cfg.c: NAME_FILE names a file holding NAME
        return name in self.names or (self.kafka_passthrough and name.startswith("KAFKA_")
                                      and len(name) > len("KAFKA_"))


_program_env = {}


def program_env(program):
    if program not in _program_env:
        _program_env[program] = ProgramEnv(program)
    return _program_env[program]


def is_dozen(svc):
    """True for a service built from docker/Dockerfile."""
    build = svc.get("build")
    if build is None:
        return False
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    else:
        context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
    return os.path.normpath(os.path.join(ROOT, context, dockerfile)) == DOCKERFILE


def dozen_services(compose):
    found = {n: s for n, s in compose["services"].items() if is_dozen(s)}
    assert found, "no service is built from docker/Dockerfile"
    return found


def as_argv(value):
    if isinstance(value, str):
        return value.split()
    assert isinstance(value, list) and value, f"bad command {value!r}"
    return [str(v) for v in value]


def program_of(name, svc):
    assert "entrypoint" not in svc, f"{name}: the dozen image has no entrypoint to replace"
    assert "command" in svc, f"{name}: no command (the image runs whatever `command:` names)"
    return os.path.basename(as_argv(svc["command"])[0])


def environment(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def is_one_shot(svc):
    """A service that runs to completion (restart: "no"); every service says which it is."""
    assert "restart" in svc, f"say restart: \"no\" (one-shot) or unless-stopped: {svc}"
    return str(svc["restart"]) == "no"


def healthcheck_argv(svc):
    hc = svc.get("healthcheck") or {}
    if hc.get("disable"):
        return []
    test = hc.get("test")
    if isinstance(test, str):
        return test.split()
    return [str(t) for t in test or []]


def depends(svc):
    dep = svc.get("depends_on") or {}
    assert isinstance(dep, dict), \
        f"depends_on must be the long form with a condition, not {dep!r}"
    return {k: (v or {}).get("condition") for k, v in dep.items()}


def published(svc):
    """(host_ip, host_port, container_port) of each short-syntax ports entry."""
    out = []
    for p in svc.get("ports") or []:
        m = re.fullmatch(r"(?:([\d.]+):)?(\d+):(\d+)(?:/tcp)?", str(p))
        assert m, f"port {p!r}: use \"IP:HOST:CONTAINER\""
        out.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return out


def effective_env(svc):
    """The environment a dozen container starts with: the image's ENV, then compose's."""
    env = dockerfile_env(dockerfile_stages()[-1])
    env.update(environment(svc))
    return env


# ---------------------------------------------------------------------------------------
# (1) compose's own validation

def docker_compose():
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is not installed (Debian package docker-compose); "
                        "CI must validate docker-compose.yml")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return exe


def compose_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in TEST_SECRETS and not k.startswith("COMPOSE_")}
    env.update(extra)
    return env


def run_compose(*args, env):
    return subprocess.run([docker_compose(), "-f", COMPOSE, "--env-file", ENV_EXAMPLE, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


PROFILES = ([], ["--profile", "ui"], ["--profile", "monitoring"])


def test_compose_config_is_valid():
    for profile in PROFILES:
        out = run_compose(*profile, "config", "-q", env=compose_env(**TEST_SECRETS))
        assert out.returncode == 0, out.stdout + out.stderr


def test_compose_config_needs_no_env_file_on_a_fresh_clone():
    """No .env at all (an empty env file, nothing in the environment): still valid."""
    with tempfile.NamedTemporaryFile("w", suffix=".env") as empty:
        for profile in PROFILES:
            out = subprocess.run([docker_compose(), "-f", COMPOSE, "--env-file", empty.name,
                                  *profile, "config", "-q"], cwd=ROOT, env=compose_env(),
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stdout + out.stderr


def test_env_overrides_the_generated_secrets():
    """A .env's (or the shell's) secrets reach the one-shot that writes the files; without
    them it gets empty values and generates its own."""
    def secrets_env(**extra):
        out = run_compose("config", env=compose_env(**extra))
        assert out.returncode == 0, out.stderr
        return yaml.safe_load(out.stdout)["services"]["secrets"]["environment"]
    given = secrets_env(**TEST_SECRETS)
    for k, v in TEST_SECRETS.items():
        assert given[k] == v, (k, given)
    empty = secrets_env()
    assert all(not empty[k] for k in TEST_SECRETS), empty


def test_compose_resolves_what_we_parse(compose):
    """PyYAML (anchors, merge keys) and compose agree on the services and their commands."""
    out = run_compose("--profile", "ui", "--profile", "monitoring", "config",
                      env=compose_env(**TEST_SECRETS))
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)["services"]
    assert set(resolved) == set(compose["services"])
    for name, svc in compose["services"].items():
        assert resolved[name].get("command") == svc.get("command"), name
        assert set(resolved[name].get("depends_on") or {}) == set(depends(svc)), name
        assert set(resolved[name].get("environment") or {}) == set(environment(svc)), name


# ---------------------------------------------------------------------------------------
# (2) programs

def test_dozen_services_run_programs_the_build_makes(compose):
    programs = makefile_programs()
    used = set()
    for name, svc in dozen_services(compose).items():
        argv = as_argv(svc["command"])
        program = program_of(name, svc)
        assert program in programs, f"{name} runs {program}, which is not in PROGRAMS"
        assert os.access(os.path.join(BIN, program), os.X_OK), \
            f"{name} runs {program}, but {BIN}/{program} was not built"
        assert argv[0] in (program, f"/usr/local/bin/{program}"), \
            f"{name}: {argv[0]} is not where the image installs programs (/usr/local/bin)"
        used.add(program)
    assert {"sales", "stock", "dozen-migrate"} <= used


def test_every_service_program_runs_in_compose(compose):
    """A program built from services/<name>/ (a dozen service) has a compose service."""
    used = {program_of(n, s) for n, s in dozen_services(compose).items()}
    services = {p for p in makefile_programs()
                if any(src.startswith("services/") for src in program_env(p).sources)}
    assert {"sales", "stock"} <= services
    assert services <= used, f"services without a compose service: {sorted(services - used)}"


# ---------------------------------------------------------------------------------------
# (3) environment

def test_source_scan_finds_what_the_programs_read():
    """The scan itself: if it found nothing, the checks below would pass for nothing."""
    sales, stock, migrate, legacy = (program_env(p) for p in
                                     ("sales", "stock", "dozen-migrate", "legacy-factory"))
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP", "HTTP_BIND", "SALES_PORT", "DB_POOL_SIZE",
            "DB_WAIT", "OUTBOX_POLL_INTERVAL", "LOG_LEVEL"} <= sales.names
    assert {"DATABASE_URL", "ADMIN_TOKEN", "STOCK_PORT", "LOG_LEVEL"} <= stock.names
    assert {"DATABASE_URL", "MIGRATIONS_DIR"} <= migrate.names
    assert sales.kafka_passthrough and stock.kafka_passthrough
    assert not legacy.kafka_passthrough and "FACTORY_DELAY_MS" in legacy.names
    assert sales.ports == {"SALES_PORT": 8080} and stock.ports == {"STOCK_PORT": 8081}
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP"} <= sales.required
    assert {"DATABASE_URL", "ADMIN_TOKEN", "KAFKA_BOOTSTRAP"} <= stock.required
    assert {"LEGACY_FACTORY_URL", "FACTORY_CALLBACK_URL"} <= program_env("factory").names


def test_every_variable_a_dozen_service_gets_is_read(compose):
    for name, svc in dozen_services(compose).items():
        prog = program_env(program_of(name, svc))
        unread = sorted(v for v in environment(svc) if not prog.reads(v))
        assert not unread, f"{name} ({prog.program}) does not read {unread}; it reads " \
                           f"{sorted(prog.names)}" + (" and KAFKA_*" if prog.kafka_passthrough else "")


def test_every_required_variable_is_set(compose):
    for name, svc in dozen_services(compose).items():
        prog = program_env(program_of(name, svc))
        env = effective_env(svc)
        missing = sorted(v for v in prog.required if not env.get(v) and
                         not (v in prog.cfg_names and env.get(v + "_FILE")))
        assert not missing, f"{name} ({prog.program}) needs {missing}"


def test_image_env_is_read_and_holds_no_secret():
    stages = dockerfile_stages()
    programs = [program_env(p) for p in makefile_programs()]
    for stage in stages:
        for k in dockerfile_env(stage):
            assert not re.search(r"PASSWORD|TOKEN|SECRET|DATABASE_URL", k), \
                f"the Dockerfile sets {k}: secrets come from the environment at run time"
        for op, args in stage["instructions"]:
            if op == "ARG":
                assert not re.search(r"PASSWORD|TOKEN|SECRET", args), f"ARG {args}"
    for k in dockerfile_env(stages[-1]):
        assert any(p.reads(k) for p in programs), f"the image sets {k}, which nothing reads"


def test_http_services_listen_on_all_interfaces_in_the_container(compose):
    for name, svc in dozen_services(compose).items():
        prog = program_env(program_of(name, svc))
        if prog.ports:
            assert effective_env(svc).get("HTTP_BIND") == "0.0.0.0", \
                f"{name} would listen on loopback only inside its container"


# ---------------------------------------------------------------------------------------
# (4) healthchecks and start order

def test_long_running_services_have_healthchecks(compose):
    for name, svc in compose["services"].items():
        if not is_one_shot(svc):
            argv = healthcheck_argv(svc)
            assert len(argv) >= 2 and argv[0] in ("CMD", "CMD-SHELL"), \
                f"{name} has no healthcheck (in the list form: [CMD, ...])"
    pg, kafka = healthcheck_argv(compose["services"]["postgres"]), \
        healthcheck_argv(compose["services"]["kafka"])
    assert "pg_isready" in " ".join(pg)
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in kafka and \
        "localhost:9092" in kafka


def test_depends_on_waits_for_health_or_completion(compose):
    services = compose["services"]
    for name, svc in services.items():
        for target, condition in depends(svc).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert condition in CONDITIONS, f"{name} -> {target}: condition {condition!r}"
            if condition == "service_healthy":
                assert healthcheck_argv(services[target]), \
                    f"{name} waits for {target} to be healthy, but it has no healthcheck"
            else:
                assert is_one_shot(services[target]), \
                    f"{name} waits for {target} to complete, but {target} restarts"


def test_dozen_services_start_after_what_they_use(compose):
    for name, svc in dozen_services(compose).items():
        env, dep = environment(svc), depends(svc)
        if "DATABASE_URL" in env:
            assert dep.get("postgres") == "service_healthy", name
            assert "@postgres:5432/" in env["DATABASE_URL"], name
        if "DATABASE_URL_FILE" in env:
            assert dep.get("postgres") == "service_healthy", name
        if any(k.endswith("_FILE") for k in env):
            assert dep.get("secrets") == "service_completed_successfully", name
        if not is_one_shot(svc) and ("DATABASE_URL" in env or "DATABASE_URL_FILE" in env):
            assert dep.get("migrate") == "service_completed_successfully", name
        if "KAFKA_BOOTSTRAP" in env:
            assert env["KAFKA_BOOTSTRAP"] == "kafka:9092", name
            assert dep.get("kafka") == "service_healthy", name
            if name != "topics":
                assert dep.get("topics") == "service_completed_successfully", name


def test_http_healthchecks_ask_the_port_the_program_listens_on(compose):
    for name, svc in dozen_services(compose).items():
        prog = program_env(program_of(name, svc))
        if not prog.ports:
            continue
        (var, default), = prog.ports.items()
        port = int(effective_env(svc).get(var) or default)
        assert healthcheck_argv(svc)[1:] == \
            ["curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}/readyz"], name


def test_migrate_applies_the_migrations_the_image_ships(compose):
    svc = compose["services"]["migrate"]
    argv = as_argv(svc["command"])
    assert is_one_shot(svc)
    assert argv[argv.index("--dir") + 1] == "/opt/dozen/migrations"
    seed = argv[argv.index("--seed") + 1]
    assert seed.startswith("/opt/dozen/migrations/")
    assert os.path.isfile(os.path.join(ROOT, "migrations", os.path.basename(seed)))
    copies = [a for op, a in dockerfile_stages()[-1]["instructions"] if op == "COPY"]
    assert "migrations/ /opt/dozen/migrations/" in copies


# ---------------------------------------------------------------------------------------
# (5) ports

def test_sales_and_stock_are_published_on_their_ports(compose):
    services = compose["services"]
    assert published(services["sales"]) == [("127.0.0.1", 8080, 8080)]
    assert published(services["stock"]) == [("127.0.0.1", 8081, 8081)]
    for name, svc in dozen_services(compose).items():
        prog = program_env(program_of(name, svc))
        if prog.ports:
            (var, default), = prog.ports.items()
            port = int(effective_env(svc).get(var) or default)
            assert published(svc) == [("127.0.0.1", default, port)], \
                f"{name}: publish the program's default port {default} on the host"


def test_everything_published_is_on_loopback_only(compose):
    for name, svc in compose["services"].items():
        for ip, _, _ in published(svc):
            assert ip == "127.0.0.1", f"{name} publishes on {ip or 'every interface'}"


# ---------------------------------------------------------------------------------------
# Kafka

def test_topics_service_creates_the_declared_topics_with_dozenctl(compose):
    """The topics come from one declaration (libcommon/topics.c): the one-shot runs the
    project's own `dozenctl topics --create`, not a second list of names in YAML."""
    svc = compose["services"]["topics"]
    assert is_one_shot(svc)
    assert svc.get("build") == compose["services"]["sales"].get("build")
    assert as_argv(svc["command"]) == ["dozenctl", "topics", "--create"]
    assert environment(svc) == {"KAFKA_BOOTSTRAP": "kafka:9092"}
    assert depends(svc) == {"kafka": "service_healthy"}
    assert "--create" in read(os.path.join(ROOT, "tools", "dozenctl", "dozenctl.c"))


def test_kafka_broker_matches_the_tested_version_and_listeners(compose):
    pom = read(os.path.join(ROOT, "tools", "kafka", "pom.xml"))
    version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom).group(1)
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{version}"
    env = environment(kafka)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    advertised = {}  # host:port -> listener name
    for listener in env["KAFKA_ADVERTISED_LISTENERS"].split(","):
        lname, address = listener.split("://", 1)
        advertised[address] = lname
    assert advertised["kafka:9092"] == env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "PLAINTEXT"
    host = [a for a in advertised if a.startswith("127.0.0.1:")]
    assert len(host) == 1, "one listener advertised for clients on the host"
    host_port = int(host[0].split(":")[1])
    assert ("127.0.0.1", host_port, host_port) in published(kafka)
    ui = compose["services"]["kafka-ui"]
    assert ui["profiles"] == ["ui"]
    assert environment(ui)["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == "kafka:9092"
    assert [p[:2] for p in published(ui)] == [("127.0.0.1", 8090)]


# ---------------------------------------------------------------------------------------
# .env.example

def strings(node):
    """Every string (keys and values) in a parsed YAML document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif isinstance(node, str):
        yield node


def interpolated(doc):
    """Names compose substitutes: ${NAME...} and $NAME, but not the escaped $$."""
    names = set()
    for text in strings(doc):
        text = text.replace("$$", "")
        names |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
        names |= set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text))
    return names


def test_env_example_lists_every_variable_with_a_comment(compose):
    lines = read(ENV_EXAMPLE).splitlines()
    declared, previous = {}, ""
    for line in lines:
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if m:
            assert previous.startswith("#") or re.match(r"[A-Za-z_]\w*=", previous), \
                f".env.example: {m.group(1)} has no comment above it"
            declared[m.group(1)] = m.group(2)
        if line.strip():
            previous = line
        else:
            previous = ""
    used = interpolated(compose)
    assert used == set(declared), \
        f"only in compose: {sorted(used - set(declared))}, " \
        f"only in .env.example: {sorted(set(declared) - used)}"
    required = {n for t in strings(compose)
                for n in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", t.replace("$$", ""))}
    assert required == set(), f"a fresh clone must start without a .env: {sorted(required)}"
    for k in list(TEST_SECRETS) + ["GRAFANA_ADMIN_PASSWORD"]:
        assert declared[k] == "", f".env.example must not ship a value for {k}"


# ---------------------------------------------------------------------------------------
# Image

MULTIARCH = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True,
                           check=True).stdout.strip()


def needed_packages(program):
    """Debian packages holding the shared libraries BIN/program links directly."""
    out = subprocess.run(["readelf", "-d", os.path.join(BIN, program)], capture_output=True,
                         text=True, check=True).stdout
    pkgs = set()
    for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
        if SANITIZER_LIBS.match(soname):
            continue  # the ASan build; the image ships the plain one
        found = subprocess.run(["dpkg-query", "-S", f"*/{soname}"], capture_output=True,
                               text=True).stdout
        # Only the library of the programs' own architecture (/lib/x86_64-linux-gnu/...):
        # libc6-i386's /lib32/libc.so.6, say, is another package that links nothing here.
        owners = {line.split(":")[0] for line in found.splitlines()
                  if line.rstrip().endswith(f"/{MULTIARCH}/" + soname)}
        assert owners, f"no Debian package holds {soname} ({program})"
        pkgs |= owners
    return pkgs


def test_image_stages_and_runtime_libraries():
    stages = dockerfile_stages()
    assert len(stages) == 2
    build, runtime = stages
    assert build["from"] == "debian:bookworm" and build["name"]
    assert runtime["from"] == "debian:bookworm-slim"
    assert {"build-essential", "pkg-config", "librdkafka-dev", "libmicrohttpd-dev",
            "libjansson-dev", "libpq-dev", "libcurl4-openssl-dev"} <= apt_packages(build)
    assert any(op == "RUN" and re.search(r"\bmake\b.*\ball\b", a)
               for op, a in build["instructions"])
    runtime_pkgs = apt_packages(runtime)
    assert {"curl", "ca-certificates"} <= runtime_pkgs
    assert not {p for p in runtime_pkgs if p.endswith("-dev")}, "no -dev package at run time"
    for program in sorted(makefile_programs()):
        missing = needed_packages(program) - runtime_pkgs - BASE_PACKAGES
        assert not missing, f"{program} needs {sorted(missing)} in the runtime stage"
    copies = [a for op, a in runtime["instructions"] if op == "COPY"]
    assert f"--from={build['name']} /src/bin/ /usr/local/bin/" in copies
    users = [a for op, a in runtime["instructions"] if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as root"


def ignored(rel, patterns):
    for pat in patterns:
        for p in (pat, pat.replace("**/", "")):
            if fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p + "/*"):
                return True
    return False


def test_build_stage_copies_enough_to_build():
    """What the build stage COPYs (minus .dockerignore) is enough for `make all`: make -n
    in a copy of exactly that finds a rule for every file."""
    patterns = [l.strip() for l in read(DOCKERIGNORE).splitlines()
                if l.strip() and not l.startswith("#")]
    for must in (".git", ".env", ".run", "bin", "build"):
        assert must in patterns, f".dockerignore must exclude {must}"
    build = dockerfile_stages()[0]
    with tempfile.TemporaryDirectory(prefix="dozen-ctx-") as ctx:
        workdir = ctx
        for op, args in build["instructions"]:
            if op == "WORKDIR":
                workdir = os.path.join(ctx, args.lstrip("/"))
                os.makedirs(workdir, exist_ok=True)
            elif op == "COPY":
                *srcs, dest = args.split()
                assert not any(s.startswith("--") for s in srcs), args
                for src in srcs:
                    top = os.path.join(ROOT, src)
                    assert os.path.exists(top), f"COPY {src}: not in the checkout"
                    target = os.path.join(workdir, dest)
                    files = [top] if os.path.isfile(top) else \
                        [os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs]
                    for f in files:
                        rel = os.path.relpath(f, ROOT)
                        if ignored(rel, patterns):
                            continue
                        if os.path.isfile(top):
                            out = target if not dest.endswith("/") else \
                                os.path.join(target, os.path.basename(f))
                        else:
                            out = os.path.join(target, os.path.relpath(f, top))
                        os.makedirs(os.path.dirname(out), exist_ok=True)
                        shutil.copy2(f, out)
        env = {k: v for k, v in os.environ.items()  # not the settings of a make above us
               if not k.startswith("MAKE") and k not in ("MFLAGS", "BUILD", "BIN", "CC")}
        out = subprocess.run(["make", "-n", "all"], cwd=workdir, env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        for program in makefile_programs():
            assert f"bin/{program}" in out.stdout, f"make all would not build {program}"


# ---------------------------------------------------------------------------------------
# Secrets: made by a one-shot, read as files

def file_vars(svc):
    """The *_FILE (and Grafana's *__FILE) variables of a service, and their paths."""
    return {k: v for k, v in environment(svc).items() if k.endswith("_FILE")}


def run_secrets_sh(tmp, **env):
    full = {"PATH": os.environ["PATH"], "SECRETS_DIR": os.path.join(tmp, "s"), **env}
    return subprocess.run(["sh", SECRETS_SH], env=full, capture_output=True, text=True,
                          timeout=30)


def test_every_secret_file_is_written_by_the_one_shot(compose):
    services = compose["services"]
    one_shot = services["secrets"]
    assert is_one_shot(one_shot)
    assert one_shot.get("network_mode") == "none"
    assert f"./docker/secrets.sh:/opt/dozen/secrets.sh:ro" in one_shot["volumes"]
    assert f"secrets:{SECRETS_DIR}" in one_shot["volumes"]
    with tempfile.TemporaryDirectory(prefix="dozen-secrets-") as tmp:
        out = run_secrets_sh(tmp)
        assert out.returncode == 0, out.stderr
        written = set(os.listdir(os.path.join(tmp, "s")))
        for name in written:
            mode = os.stat(os.path.join(tmp, "s", name)).st_mode & 0o777
            assert mode == 0o444, f"{name}: mode {mode:o}"
    assert {"postgres_password", "admin_token", "database_url"} <= written
    users = 0
    for name, svc in services.items():
        for var, path in file_vars(svc).items():
            users += 1
            assert os.path.dirname(path) == SECRETS_DIR, f"{name}: {var}={path}"
            assert os.path.basename(path) in written, \
                f"{name}: {var} names {path}, which docker/secrets.sh does not write"
            assert f"secrets:{SECRETS_DIR}:ro" in (svc.get("volumes") or []), \
                f"{name} reads {path} but does not mount the secrets volume read-only"
            assert depends(svc).get("secrets") == "service_completed_successfully", name
        # No secret in plain text anywhere else.
        for var, value in environment(svc).items():
            if name != "secrets" and re.search(r"PASSWORD|TOKEN", var) and \
                    not var.endswith("_FILE") and var not in ("SMS_AUTH_TOKEN",):
                pytest.fail(f"{name}: {var} is given as a value, not as a file")
    assert users >= 8, "the services read their secrets as files"
    assert file_vars(services["postgres"]) == \
        {"POSTGRES_PASSWORD_FILE": f"{SECRETS_DIR}/postgres_password"}


def test_secrets_sh_generates_once_keeps_and_takes_env(tmp_path):
    tmp = str(tmp_path)
    s = os.path.join(tmp, "s")
    assert run_secrets_sh(tmp).returncode == 0
    first = {n: open(os.path.join(s, n)).read() for n in os.listdir(s)}
    assert re.fullmatch(r"[0-9a-f]{32}\n", first["postgres_password"])
    assert first["database_url"] == \
        f"postgresql://dozen:{first['postgres_password'].strip()}@postgres:5432/dozen\n"
    assert run_secrets_sh(tmp).returncode == 0
    assert {n: open(os.path.join(s, n)).read() for n in os.listdir(s)} == first, "not kept"
    out = run_secrets_sh(tmp, POSTGRES_PASSWORD="from_env-1", ADMIN_TOKEN="x" * 20,
                         POSTGRES_USER="shop", POSTGRES_DB="shopdb")
    assert out.returncode == 0, out.stderr
    assert open(os.path.join(s, "admin_token")).read() == "x" * 20 + "\n"
    assert open(os.path.join(s, "database_url")).read() == \
        "postgresql://shop:from_env-1@postgres:5432/shopdb\n"
    for bad, message in (({"POSTGRES_PASSWORD": "a@b"}, "POSTGRES_PASSWORD"),
                         ({"ADMIN_TOKEN": "short"}, "at least 16 characters"),
                         ({"POSTGRES_USER": "a b"}, "POSTGRES_USER")):
        out = run_secrets_sh(tmp, **bad)
        assert out.returncode != 0 and message in out.stderr, (bad, out.stderr)


def test_a_service_reads_its_secrets_from_files(stack, migrated, make_sku, tmp_path):
    """What compose gives stock (DATABASE_URL_FILE, ADMIN_TOKEN_FILE, files written by
    docker/secrets.sh) works with the real program; a file others may write is refused."""
    from conftest import Service, free_port, service_env, CONSUMER_ENV
    tmp = str(tmp_path)
    assert run_secrets_sh(tmp).returncode == 0
    secrets = os.path.join(tmp, "s")
    token = open(os.path.join(secrets, "admin_token")).read().strip()
    env = service_env(migrated, stack.broker, **CONSUMER_ENV)
    url_file = os.path.join(tmp, "database_url")
    with open(url_file, "w") as f:
        f.write(env.pop("DATABASE_URL") + "\n")
    os.chmod(url_file, 0o444)
    env.pop("ADMIN_TOKEN", None)
    port = free_port()
    env.update(STOCK_PORT=str(port), DATABASE_URL_FILE=url_file,
               ADMIN_TOKEN_FILE=os.path.join(secrets, "admin_token"))
    svc = Service("stock", env, port, stack.workdir)
    stack.procs.append(svc)
    svc.start()
    import requests
    sku = make_sku(1)
    r = requests.put(f"{svc.url}/inventory/{sku}", json={"quantity": 9}, timeout=5,
                     headers={"Authorization": "Bearer " + token})
    assert r.status_code == 200, r.text
    r = requests.put(f"{svc.url}/inventory/{sku}", json={"quantity": 9}, timeout=5,
                     headers={"Authorization": "Bearer " + "y" * 32})
    assert r.status_code == 401, r.text

    loose = os.path.join(tmp, "loose_token")
    with open(loose, "w") as f:
        f.write("z" * 20)
    os.chmod(loose, 0o666)
    bad = dict(env, ADMIN_TOKEN_FILE=loose, STOCK_PORT=str(free_port()))
    out = subprocess.run([os.path.join(BIN, "stock")], env=bad, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    assert "ADMIN_TOKEN_FILE" in out.stderr and "writable by group or others" in out.stderr, \
        out.stderr


# ---------------------------------------------------------------------------------------
# The monitoring profile

def metric_names_in_sources():
    """Every dozen_* or process_* name written as a string literal in the C sources."""
    names = set()
    for d in ("libcommon", "services"):
        for base, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                if f.endswith(".c"):
                    names |= set(re.findall(r'"((?:dozen|process)_[a-z0-9_]+)"',
                                            read(os.path.join(base, f))))
    return names


def test_prometheus_scrapes_every_dozen_service(compose):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: run `make deps` (Debian package prometheus)")
    out = subprocess.run([promtool, "check", "config", PROMETHEUS_YML], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    prom = compose["services"]["prometheus"]
    assert prom["profiles"] == ["monitoring"]
    assert "./docker/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom["volumes"]
    assert [p[:2] for p in published(prom)] == [("127.0.0.1", 9090)]
    cfg = yaml.safe_load(read(PROMETHEUS_YML))
    jobs = {j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]]
            for j in cfg["scrape_configs"]}
    services = 0
    for name, svc in dozen_services(compose).items():
        prog = program_env(program_of(name, svc))
        if is_one_shot(svc) or not any(s.startswith("services/") for s in prog.sources):
            continue
        services += 1
        (var, default), = prog.ports.items()
        port = int(effective_env(svc).get(var) or default)
        assert jobs.get(name) == [f"{name}:{port}"], f"no scrape job for {name}:{port}: {jobs}"
    assert services == 5


def test_grafana_dashboard_shows_what_operators_ask(compose):
    import json
    dash = json.loads(read(DASHBOARD))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    used = set()
    for e in exprs:
        used |= set(re.findall(r"\b((?:dozen|process)_[a-z0-9_]+)", e))
    known = metric_names_in_sources()
    for name in used:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert name in known or base in known, f"the dashboard asks for {name}, which no " \
                                               f"service exports"
    for must in ("dozen_orders_total", "dozen_http_request_duration_seconds_bucket",
                 "dozen_consumer_lag_records", "dozen_outbox_backlog_rows",
                 "dozen_retry_pending", "dozen_retry_dead_letters", "dozen_sms_sends_total"):
        assert must in used, f"the dashboard has no panel on {must}"
    ds = yaml.safe_load(read(os.path.join(ROOT, "docker", "grafana", "provisioning",
                                          "datasources", "prometheus.yml")))["datasources"][0]
    assert ds["url"] == "http://prometheus:9090"
    assert all(p["datasource"]["uid"] == ds["uid"] for p in dash["panels"] if "datasource" in p)
    graf = compose["services"]["grafana"]
    assert graf["profiles"] == ["monitoring"]
    assert depends(graf).get("prometheus") == "service_healthy"
    assert "./docker/grafana/dashboards:/var/lib/grafana/dashboards:ro" in graf["volumes"]
    assert "./docker/grafana/provisioning:/etc/grafana/provisioning:ro" in graf["volumes"]
    prov = yaml.safe_load(read(os.path.join(ROOT, "docker", "grafana", "provisioning",
                                            "dashboards", "dozen.yml")))
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert [p[:2] for p in published(graf)] == [("127.0.0.1", 3000)]


# ---------------------------------------------------------------------------------------
# docker compose and `make up` (tools/stack.sh) run the same system

def stack_sh():
    """What tools/stack.sh starts: its SERVICES, and the variables and values of START_ENV
    (with the script's own defaults, ${X:-default}, resolved)."""
    text = read(STACK_SH)
    services = re.search(r"^SERVICES=\(([^)]*)\)", text, re.M).group(1).split()
    defaults = dict(re.findall(r"^([A-Z_]+)=\$\{\1:-([^}]*)\}$", text, re.M))
    consts = dict(re.findall(r"^([A-Z_]+)=([A-Za-z0-9_.-]+)$", text, re.M))
    block = re.search(r"^\s*START_ENV=\(([^)]+)\)", text, re.M).group(1)
    env = {}
    for k, v in re.findall(r"([A-Z_][A-Z0-9_]*)=\"([^\"]*)\"", block):
        v = re.sub(r"\$\{([A-Z_]+):-([^}]*)\}", lambda m: m.group(2), v)
        v = re.sub(r"\$([A-Z_]+)", lambda m: defaults.get(m.group(1), consts.get(m.group(1),
                                                                                 "$" + m.group(1))), v)
        env[k] = v
    return services, env


# Settings one side gives and the other leaves at the program's default, on purpose.
COMPOSE_ONLY = {
    "HTTP_BIND": "a container listens on every interface; make up on loopback (the default)",
    "DB_WAIT": ".env knob; make up uses the default",
    "DB_POOL_SIZE": ".env knob; make up uses the default",
    "OUTBOX_POLL_INTERVAL": ".env knob; make up uses the default",
    "FACTORY_DELAY_MS": ".env knob; make up passes the environment's",
    "BULLETIN_CRON": ".env knob; make up passes BULLETIN_* from the environment",
    "BULLETIN_TZ": "likewise", "BULLETIN_DEADLINE": "likewise",
    "BULLETIN_RETRY_INTERVAL": "likewise", "BULLETIN_FALLBACK_URL": "likewise",
    "LEGACY_FACTORY_ID": ".env knob; make up passes LEGACY_FACTORY_* from the environment",
    "LEGACY_FACTORY_REQUESTER": "likewise", "LEGACY_FACTORY_GROUP_ID": "likewise",
}
COMPOSE_ONLY.update({
    "SMS_RATE": ".env knob; make up passes the environment's (the notifier's default, 1, "
                "either way)",
    "SMS_STATUS_CALLBACK_URL": "make up adds it after START_ENV: the notifier on loopback "
                               "for the stand-in, the environment's for a real provider",
    "SMS_GATEWAY_RATE": ".env knob; make up passes SMS_GATEWAY_* from the environment",
    "BULLETIN_TEMPLATE": ".env knob; make up passes BULLETIN_* from the environment",
    "SMS_MAX_SEGMENTS": ".env knob; make up uses the default",
})
STACK_ONLY = {
    "INSTANCE_ID": "static group membership for make up's restarts; compose restarts the "
                   "container, whose new member joins by itself",
    "KAFKA_FETCH_WAIT_MAX_MS": "the dev broker only",
}


def test_compose_and_make_up_start_the_same_programs_with_the_same_settings(compose):
    services, stack_env = stack_sh()
    dozen = {n: s for n, s in dozen_services(compose).items()}
    long_running = {program_of(n, s): s for n, s in dozen.items() if not is_one_shot(s)}
    assert set(long_running) == set(services), \
        f"compose runs {sorted(long_running)}, make up {sorted(services)}"
    assert "dozen-migrate" in {program_of(n, s) for n, s in dozen.items() if is_one_shot(s)}
    assert "dozen-migrate" in read(STACK_SH)
    for program, svc in sorted(long_running.items()):
        prog = program_env(program)
        env = effective_env(svc)
        in_compose = {k[:-len("_FILE")] if k.endswith("_FILE") else k
                      for k in environment(svc) if prog.reads(k)}
        in_stack = {k for k in stack_env if prog.reads(k)}
        only_compose = in_compose - in_stack - set(COMPOSE_ONLY)
        only_stack = in_stack - in_compose - set(STACK_ONLY)
        assert not only_compose and not only_stack, \
            f"{program}: only compose sets {sorted(only_compose)}, only make up sets " \
            f"{sorted(only_stack)}"
        # Ports: the same on both sides (the programs' defaults).
        for var, default in prog.ports.items():
            assert int(env.get(var) or default) == int(stack_env[var]) == default, program
    # Where one program must agree with another, it does on both sides.
    def port_of(url):
        return int(re.search(r":(\d+)", url.split("//", 1)[1]).group(1))
    ce = {p: effective_env(s) for p, s in long_running.items()}
    for env, side in ((None, "compose"), (stack_env, "make up")):
        get = (lambda p, k: ce[p].get(k)) if env is None else (lambda p, k: env.get(k))
        assert port_of(get("factory", "LEGACY_FACTORY_URL")) == \
            int(get("legacy-factory", "LEGACY_FACTORY_PORT")), side
        assert port_of(get("factory", "FACTORY_CALLBACK_URL")) == \
            int(get("factory", "FACTORY_PORT")), side
        source = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", get("notifier", "BULLETIN_SOURCE_URL"))
        assert source.endswith("/daily") and \
            port_of(source) == int(get("open-data", "OPEN_DATA_PORT")), side
        assert port_of(re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1",
                              get("notifier", "SMS_GATEWAY_URL"))) == \
            int(get("sms-gateway", "SMS_GATEWAY_PORT")), side
        for k in ("SMS_ACCOUNT_SID", "SMS_AUTH_TOKEN"):
            assert get("notifier", k) == get("sms-gateway", k), (side, k)
