"""A lost network towards PostgreSQL is noticed within seconds, not hours (issue 11, point
7): libcommon/db.c's db_connect sets tcp_user_timeout (10 s) and TCP keepalives (5 s idle,
3 probes 2 s apart) on every connection.

A blackhole, not a refusal: sales runs in a network namespace of its own and reaches
PostgreSQL over a veth pair, through a forwarder in a second namespace (the "database
host"). On command the service's side sends every packet for that host to a MAC address
nobody has, so its packets vanish without an error or a reset, as when a cable or a
firewall drops them. (A forwarder in user space cannot do this on its own: its kernel
would go on acknowledging every byte and answering keepalives.) Kafka and the HTTP port
reach the namespace through forwarders on loopback that the blackhole does not touch.

While the blackhole lasts, an order fails within BOUND_S with a 5xx (without the TCP
settings it would wait for the kernel's retransmissions, about 15 minutes); once it ends,
/readyz answers 200 and orders succeed again within RECOVER_S. Needs root (namespaces);
skipped otherwise. Every namespace, forwarder and process is gone at the end."""

import ctypes
import os
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, Service, free_port, service_env, wait_for

# The commit fails after tcp_user_timeout (10 s); sales then asks on a new connection
# whether it committed, which meets the blackhole too (20.8 s in all on this machine),
# and slack for a loaded machine. With tcp_user_timeout=0&keepalives=0 in DATABASE_URL
# the same order had no answer after 70 s (the kernel's own bound is about 15 min).
BOUND_S = 40
RECOVER_S = 30
DB_IP = "10.213.0.2"      # the "database host" namespace, on the far end of the veth pair
SVC_IP = "10.213.0.1"
DB_PORT = 5432
NOWHERE = "02:00:00:00:00:01"  # a MAC address no interface has
CLONE_NEWNET = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


class Netns:
    """A network namespace held by a sleeping process of its own; gone when it is killed."""

    def __init__(self):
        # the holder's lifetime bounds the namespace's, should the test itself be killed
        self.holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "600"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.path = f"/proc/{self.holder.pid}/ns/net"
        # unshare execs sleep once the namespace exists: wait until it is not ours
        wait_for(lambda: os.path.exists(self.path) and
                 os.readlink(self.path) != os.readlink("/proc/self/ns/net"), 10,
                 "the namespace")
        self.fd = os.open(self.path, os.O_RDONLY)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args, check=True):
        subprocess.run(["nsenter", f"--net={self.path}", "--", "ip"] + list(args),
                       check=check, capture_output=True, timeout=10)

    def close(self):
        os.close(self.fd)
        self.holder.kill()
        self.holder.wait(timeout=10)


class Forwarder:
    """TCP forwarders between namespaces, on threads of this process. A listening socket or
    an outgoing one belongs to the namespace its thread was in when it was made; setns is
    called only on the forwarder's own threads, never on pytest's."""

    def __init__(self, host_fd):
        self.host_fd = host_fd
        self.socks = []
        self.lock = threading.Lock()
        self.closed = False

    def _made_in(self, ns_fd, make):
        if ns_fd is None:
            return make()
        setns(ns_fd)
        try:
            return make()
        finally:
            setns(self.host_fd)

    def _track(self, s):
        with self.lock:
            self.socks.append(s)
        return s

    def add(self, listen_ns, listen_addr, target_ns, target_addr):
        """Forwards connections to listen_addr in listen_ns (None: this one) to target_addr
        in target_ns."""
        ready = threading.Event()
        box = {}

        def make_listener():
            def make():
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(listen_addr)
                s.listen(64)
                return s
            try:
                box["s"] = self._track(self._made_in(listen_ns, make))
            except OSError as e:
                box["e"] = e
            ready.set()

        t = threading.Thread(target=make_listener, daemon=True)
        t.start()
        ready.wait(10)
        if "e" in box:
            raise box["e"]
        threading.Thread(target=self._accept, args=(box["s"], target_ns, target_addr),
                         daemon=True).start()

    def _accept(self, listener, target_ns, target_addr):
        while not self.closed:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self._track(client)
            threading.Thread(target=self._connect, args=(client, target_ns, target_addr),
                             daemon=True).start()

    def _connect(self, client, target_ns, target_addr):
        try:
            server = self._track(self._made_in(target_ns, socket.socket))
            server.settimeout(10)
            server.connect(target_addr)
            server.settimeout(None)
        except OSError:
            client.close()
            return
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class NsService(Service):
    """A service started inside a network namespace; its url is the host-side forward of
    its port (the same number on 127.0.0.1 of both)."""

    def __init__(self, name, env, port, workdir, netns):
        super().__init__(name, env, port, workdir)
        self.netns = netns

    def start(self, timeout=30):
        log = open(self.log_path, "ab")
        self.p = subprocess.Popen(["nsenter", f"--net={self.netns.path}", "--",
                                   os.path.join(BIN, self.name)] + self.args, env=self.env,
                                  stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        log.close()
        wait_for(self.healthy, timeout, f"{self.name} /healthz")
        return self


def order(svc, sku, timeout):
    return requests.post(svc.url + "/orders", json={"sku": sku, "quantity": 1},
                         timeout=timeout)


def ready(svc):
    try:
        return requests.get(svc.url + "/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def blackholed_sales(migrated, broker, workdir, stack, make_sku):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    host_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    svc_ns = db_ns = fwd = None
    try:
        svc_ns, db_ns = Netns(), Netns()
        svc_ns.ip("link", "add", "va", "type", "veth", "peer", "name", "vb", "netns",
                  str(db_ns.holder.pid))
        svc_ns.ip("addr", "add", f"{SVC_IP}/24", "dev", "va")
        svc_ns.ip("link", "set", "va", "up")
        db_ns.ip("addr", "add", f"{DB_IP}/24", "dev", "vb")
        db_ns.ip("link", "set", "vb", "up")

        fwd = Forwarder(host_fd)
        # the database host: DB_IP:DB_PORT in its namespace -> the test's PostgreSQL
        fwd.add(db_ns.fd, (DB_IP, DB_PORT), None, ("127.0.0.1", migrated.port))
        # the broker: the same addresses inside the service's namespace (its metadata
        # names them) -> the broker on loopback
        for addr in broker.split(","):
            host, port = addr.rsplit(":", 1)
            assert host in ("127.0.0.1", "localhost"), broker
            fwd.add(svc_ns.fd, ("127.0.0.1", int(port)), None, ("127.0.0.1", int(port)))
        port = free_port()
        fwd.add(None, ("127.0.0.1", port), svc_ns.fd, ("127.0.0.1", port))

        url = migrated.url.replace(f"127.0.0.1:{migrated.port}", f"{DB_IP}:{DB_PORT}")
        assert url != migrated.url
        svc = NsService("sales", service_env(migrated, broker, SALES_PORT=port,
                                             DATABASE_URL=url), port, workdir, svc_ns)
        stack.procs.append(svc)  # stopped, and its exit checked, by the stack fixture
        svc.start()
        wait_for(lambda: ready(svc), 30, "sales ready in its namespace")

        def blackhole(on):
            if on:
                svc_ns.ip("neigh", "replace", DB_IP, "lladdr", NOWHERE, "dev", "va", "nud",
                          "permanent")
            else:
                svc_ns.ip("neigh", "del", DB_IP, "dev", "va", check=False)

        yield svc, make_sku(1000), blackhole
        blackhole(False)
        # the stack fixture stops sales after this; it must find its database again
        wait_for(lambda: ready(svc), RECOVER_S, "sales ready before it is stopped")
    finally:
        failures = []
        for p in stack.procs:  # before the forwarders go: a clean stop needs the broker
            if isinstance(p, NsService):
                code = p.stop()
                if code != 0:
                    failures.append(f"{p.name} exited with {code}:\n{p.log()[-4000:]}")
        if fwd is not None:
            fwd.close()
        for ns in (svc_ns, db_ns):
            if ns is not None:
                ns.close()
        os.close(host_fd)
        assert not failures, "\n".join(failures)


def test_an_order_fails_within_the_bound_and_the_service_recovers(blackholed_sales):
    svc, sku, blackhole = blackholed_sales
    r = order(svc, sku, 10)
    assert r.status_code == 201, r.text

    blackhole(True)
    started = time.monotonic()
    try:
        r = order(svc, sku, BOUND_S + 30)
    except requests.Timeout:
        pytest.fail(f"an order during the blackhole had no answer after {BOUND_S + 30} s")
    took = time.monotonic() - started
    assert 500 <= r.status_code < 600, (r.status_code, r.text)
    uncertain = r.json().get("order_id")  # sent, and then the database went away
    assert took < BOUND_S, f"the order took {took:.1f} s to fail"
    # not a refusal that came at once: the packets did vanish, and TCP had to give up
    assert took > 3, f"the order failed after {took:.1f} s: was it a blackhole?"
    print(f"\norder failed after {took:.1f} s with {r.status_code}: {r.text}")

    blackhole(False)
    started = time.monotonic()
    wait_for(lambda: ready(svc), RECOVER_S, "/readyz 200 after the blackhole")
    wait_for(lambda: order(svc, sku, 10).status_code == 201, RECOVER_S,
             "an order placed after the blackhole")
    print(f"recovered in {time.monotonic() - started:.1f} s")
    if uncertain is not None:
        # the answer said GET /orders/{id} tells whether it was placed: it can now
        r = requests.get(f"{svc.url}/orders/{uncertain}", timeout=10)
        assert r.status_code in (200, 404), (r.status_code, r.text)
    assert svc.alive()
