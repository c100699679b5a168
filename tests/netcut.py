"""netcut.py: one service instance cut off from PostgreSQL on command, without iptables or
nft (this machine has neither), for tests/system/test_47 and the chaos suite's `cut`.

The instance runs in a network namespace of its own and reaches PostgreSQL over a veth
pair, through a forwarder in a second namespace (the "database host"). A blackhole makes
the service's side send every packet for that host to a MAC address nobody has, so its
packets vanish without an error or a reset, as when a cable or a firewall drops them. (A
forwarder in user space cannot do this on its own: its kernel would go on acknowledging
every byte and answering keepalives.) Kafka and the HTTP port reach the namespace through
forwarders on loopback that the blackhole does not touch.

Needs root (namespaces) and `ip`, `nsenter`, `unshare`, `setpriv`: available() says
whether this machine has them. The forwarders are threads of the calling process; every
namespace is held by a sleeping process that dies with the thread that made it, so nothing
outlives the caller even when it is killed."""

import ctypes
import os
import shutil
import socket
import subprocess
import threading
import time

DB_IP = "10.213.0.2"      # the "database host" namespace, on the far end of the veth pair
SVC_IP = "10.213.0.1"
DB_PORT = 5432
NOWHERE = "02:00:00:00:00:01"  # a MAC address no interface has
CLONE_NEWNET = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)


def available():
    """None when a cut can be made here, else why not (a sentence)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [p for p in ("ip", "nsenter", "unshare", "setpriv") if shutil.which(p) is None]
    if missing:
        return "missing " + ", ".join(missing)
    return None


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def _wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Netns:
    """A network namespace held by a sleeping process of its own; gone when it is killed.
    The holder gets SIGKILL when the thread that made it exits (PR_SET_PDEATHSIG): make a
    Netns on a thread that lives as long as it is needed (the main one)."""

    def __init__(self):
        self.holder = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", "unshare",
                                        "--net", "--", "sleep", "infinity"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.path = f"/proc/{self.holder.pid}/ns/net"
        self.fd = None
        try:
            # unshare execs sleep once the namespace exists: wait until it is not ours
            _wait_for(lambda: os.path.exists(self.path) and
                      os.readlink(self.path) != os.readlink("/proc/self/ns/net"), 10,
                      "the namespace")
            self.fd = os.open(self.path, os.O_RDONLY)
            self.ip("link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def nsenter(self):
        """The command prefix that runs a program in this namespace (nsenter execs it: the
        pid stays the program's)."""
        return ["nsenter", f"--net={self.path}", "--"]

    def ip(self, *args, check=True):
        subprocess.run(self.nsenter() + ["ip"] + list(args), check=check,
                       capture_output=True, timeout=10)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait(timeout=10)


class Forwarder:
    """TCP forwarders between namespaces, on threads of this process. A listening socket or
    an outgoing one belongs to the namespace its thread was in when it was made; setns is
    called only on the forwarder's own threads, never on the caller's. A connection's two
    sockets are closed when both directions are done, so a long run does not pile up
    descriptors."""

    def __init__(self, host_fd):
        self.host_fd = host_fd
        self.socks = set()
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
            if self.closed:
                s.close()
                raise OSError("forwarder closed")
            self.socks.add(s)
        return s

    def _forget(self, *socks):
        with self.lock:
            for s in socks:
                self.socks.discard(s)
        for s in socks:
            s.close()

    def add(self, listen_ns, listen_addr, target_ns, target_addr):
        """Forwards connections to listen_addr in listen_ns (a namespace fd; None: this
        process's) to target_addr in target_ns."""
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
                self._track(client)
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client, target_ns, target_addr),
                             daemon=True).start()

    def _connect(self, client, target_ns, target_addr):
        try:
            server = self._track(self._made_in(target_ns, socket.socket))
        except OSError:
            self._forget(client)
            return
        try:
            server.settimeout(10)
            server.connect(target_addr)
            server.settimeout(None)
        except OSError:
            self._forget(client, server)
            return
        other = threading.Thread(target=self._pump, args=(server, client), daemon=True)
        other.start()
        self._pump(client, server)
        other.join()
        self._forget(client, server)

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
        with self.lock:
            self.closed = True
            socks, self.socks = self.socks, set()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class PgCut:
    """A namespace for one service instance whose way to PostgreSQL (pg_port on 127.0.0.1)
    goes over a veth pair that blackhole() can cut, and whose ways to the Kafka brokers
    (host:port pairs on loopback, the addresses their metadata names) and from its own HTTP
    ports (expose()) do not. database_url() gives the instance's DATABASE_URL. close() ends
    every forwarder and both namespaces; stop the instance first (a clean stop needs its
    broker). Blocks for a moment while it sets up; raises OSError or subprocess errors if
    it cannot, having undone what it did."""

    def __init__(self, pg_port, brokers):
        self.pg_port = pg_port
        self.host_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.svc_ns = self.db_ns = self.fwd = None
        try:
            self.svc_ns, self.db_ns = Netns(), Netns()
            self.svc_ns.ip("link", "add", "va", "type", "veth", "peer", "name", "vb", "netns",
                           str(self.db_ns.holder.pid))
            self.svc_ns.ip("addr", "add", f"{SVC_IP}/24", "dev", "va")
            self.svc_ns.ip("link", "set", "va", "up")
            self.db_ns.ip("addr", "add", f"{DB_IP}/24", "dev", "vb")
            self.db_ns.ip("link", "set", "vb", "up")
            self.fwd = Forwarder(self.host_fd)
            # the database host: DB_IP:DB_PORT in its namespace -> PostgreSQL on loopback
            self.fwd.add(self.db_ns.fd, (DB_IP, DB_PORT), None, ("127.0.0.1", pg_port))
            # the brokers: the same addresses inside the service's namespace -> loopback
            for host, port in brokers:
                if host not in ("127.0.0.1", "localhost"):
                    raise OSError(f"broker {host}:{port} is not on loopback")
                self.fwd.add(self.svc_ns.fd, ("127.0.0.1", port), None, ("127.0.0.1", port))
        except BaseException:
            self.close()
            raise

    def expose(self, port):
        """127.0.0.1:port here -> 127.0.0.1:port in the service's namespace (its HTTP
        port). Raises OSError if the port is taken here."""
        self.fwd.add(None, ("127.0.0.1", port), self.svc_ns.fd, ("127.0.0.1", port))

    def database_url(self, url):
        """url (naming 127.0.0.1:pg_port) with the database host's address instead."""
        cut = url.replace(f"127.0.0.1:{self.pg_port}", f"{DB_IP}:{DB_PORT}")
        if cut == url:
            raise ValueError(f"{url} does not name 127.0.0.1:{self.pg_port}")
        return cut

    def nsenter(self):
        return self.svc_ns.nsenter()

    def blackhole(self, on):
        if on:
            self.svc_ns.ip("neigh", "replace", DB_IP, "lladdr", NOWHERE, "dev", "va", "nud",
                           "permanent")
        else:
            self.svc_ns.ip("neigh", "del", DB_IP, "dev", "va", check=False)

    def close(self):
        if self.fwd is not None:
            self.fwd.close()
            self.fwd = None
        for ns in (self.svc_ns, self.db_ns):
            if ns is not None:
                ns.close()
        self.svc_ns = self.db_ns = None
        if self.host_fd is not None:
            os.close(self.host_fd)
            self.host_fd = None


def brokers_of(bootstrap):
    """[(host, port)] of a comma-separated bootstrap list."""
    out = []
    for addr in bootstrap.split(","):
        host, port = addr.strip().rsplit(":", 1)
        out.append((host, int(port)))
    return out
