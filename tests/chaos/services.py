"""Parts the fault-injection suite runs for itself, so that its faults never
touch what other tests share:

- PrivatePg: a second PostgreSQL cluster from deploy/local/pg, pointed at a
  temporary GW_LOCAL_DIR and a free GW_PG_PORT (as root the script runs the
  server as `postgres` through runuser, as it does for the shared one);
- PrivateKafka: a second single-node KRaft broker from deploy/local/kafka,
  pointed at a temporary GW_LOCAL_DIR and free ports, its libs/ a symlink to
  the jars the shared instance already cached (read-only use);
- Balancer: a TCP round-robin load balancer in front of broker replicas: a
  backend that refuses the connection is skipped, as a health-checking load
  balancer would.

Each has close(), bounded, to be called from a finally. The shared instances
under deploy/local are never started, stopped, killed or reset from here:
every deploy/local call gets the private GW_LOCAL_DIR and port."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

SRC = os.environ.get("GW_SOURCE_ROOT",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LOCAL = os.path.join(SRC, "deploy", "local")


def free_port(pair=False):
    """A free loopback port; with pair=True, one whose successor is free too
    (Kafka's controller listens on port + 1)."""
    for _ in range(50):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        if not pair:
            s.close()
            return port
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
        finally:
            t.close()
            s.close()
    raise RuntimeError("no free port pair")


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] not in "ZX"
    except (OSError, IndexError):
        return False


def _script(name, cmd, env, timeout):
    p = subprocess.run([os.path.join(LOCAL, name), cmd], env=env, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError("deploy/local/%s %s failed (%d): %s%s"
                           % (name, cmd, p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p.stdout


class PrivatePg:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gw-chaos-pg-")
        self.port = free_port()
        self.env = dict(os.environ, GW_LOCAL_DIR=self.dir, GW_PG_PORT=str(self.port))
        self.dsn = "host=127.0.0.1 port=%d user=gangway dbname=postgres" % self.port

    def start(self):
        _script("pg", "start", self.env, 120)

    def stop(self):
        """Fast shutdown (pg_ctl -m fast): sessions are rolled back, clients
        see their connections closed."""
        _script("pg", "stop", self.env, 90)

    def sql(self, *statements):
        """Runs each statement in its own transaction (psql -c), as the
        cluster's superuser; fails on the first error."""
        argv = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", self.dsn]
        for st in statements:
            argv += ["-c", st]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("psql failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
        return p.stdout

    def close(self):
        try:
            _script("pg", "stop", self.env, 90)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print("warning: private PostgreSQL did not stop cleanly:", e)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateKafka:
    def __init__(self):
        self.version = os.environ.get("GW_KAFKA_VERSION", "3.9.2")
        shared = os.environ.get("GW_LOCAL_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gangway", "local")
        self.shared_libs = os.path.join(shared, "kafka-" + self.version, "libs")
        self.dir = tempfile.mkdtemp(prefix="gw-chaos-kafka-")
        self.home = os.path.join(self.dir, "kafka-" + self.version)
        self.port = free_port(pair=True)
        self.env = dict(os.environ, GW_LOCAL_DIR=self.dir, GW_KAFKA_PORT=str(self.port),
                        GW_KAFKA_CONTROLLER_PORT=str(self.port + 1), GW_KAFKA_HEAP="512m",
                        GW_KAFKA_READY_TIMEOUT="60")
        self.brokers = "127.0.0.1:%d" % self.port

    def start(self):
        if not os.path.exists(os.path.join(self.home, "libs")):
            if not os.path.exists(os.path.join(self.shared_libs, ".complete")):
                raise RuntimeError("no cached Kafka jars in %s (deploy/local/kafka fetch)"
                                   % self.shared_libs)
            os.makedirs(self.home, exist_ok=True)
            os.symlink(self.shared_libs, os.path.join(self.home, "libs"))
        _script("kafka", "start", self.env, 100)

    def pid(self):
        try:
            with open(os.path.join(self.home, "kafka.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def kill(self):
        """SIGKILL, by the pid this suite's start wrote; waits (bounded) for it
        to be gone."""
        pid = self.pid()
        if pid is None or not alive(pid):
            raise RuntimeError("private Kafka is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 15
        while alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        if alive(pid):
            raise RuntimeError("private Kafka %d survived SIGKILL" % pid)

    def close(self):
        # Its data is thrown away: no need for a controlled shutdown.
        pid = self.pid()
        if pid is not None and alive(pid):
            try:
                self.kill()
            except (RuntimeError, OSError) as e:
                print("warning: private Kafka:", e)
        shutil.rmtree(self.dir, ignore_errors=True)


class Balancer:
    """Round-robin TCP proxy on 127.0.0.1:<port> to a list of (host, port)."""

    def __init__(self, backends):
        self.backends = list(backends)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.next = 0
        self.closed = False
        self.lock = threading.Lock()
        self.conns = set()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with self.lock:
            first = self.next
            self.next += 1
        up = None
        for k in range(len(self.backends)):
            try:
                up = socket.create_connection(self.backends[(first + k) % len(self.backends)], timeout=1)
                break
            except OSError:
                continue
        if up is None:
            c.close()
            return
        up.settimeout(None)
        c.settimeout(None)
        with self.lock:
            self.conns.update((c, up))
        t = threading.Thread(target=self._pump, args=(up, c), daemon=True)
        t.start()
        self._pump(c, up)
        t.join(60)
        with self.lock:
            self.conns.discard(c)
            self.conns.discard(up)
        c.close()
        up.close()

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
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.closed = True
        self.sock.close()
        with self.lock:
            conns = list(self.conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(2)
