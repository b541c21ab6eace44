"""A RabbitMQ broker of the test's own (Debian's `rabbitmq-server`), on free loopback ports, from
config files generated in a temporary folder: its own node name, AMQP and distribution ports,
Erlang cookie, database and logs, so that it neither needs nor touches a broker the machine may
run on 5672, and nothing of it outlives the test but its logs.

Readiness is polled (an AMQP protocol header answered with Connection.Start), never slept for;
the logs' tails are in every error. CI installs RabbitMQ (.ci/run) and sets ISKA_REQUIRE_RABBITMQ;
elsewhere `rabbitmq_available()` says why the tests that need it are skipped.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from iska_pipelines_tests.kannel import free_ports

# the server itself, not /usr/sbin's wrapper: that one switches to the rabbitmq user (who cannot
# read the test's folder) and reads /etc/rabbitmq/rabbitmq-env.conf
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
STARTUP_SECONDS = 90.0  # about 7 s on an idle 2-core machine; a guard against a hung boot
STOP_SECONDS = 20.0  # about 2 s after SIGTERM
POLL_SECONDS = 0.1
# what a client sends first (AMQP 0-9-1), and the frame a ready broker answers with: a method
# frame (type 1) on channel 0
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
METHOD_FRAME = 1
# A send step holds its task unacknowledged until it has finished (task_acks_late,
# defs/sms/executors.py); RabbitMQ closes a channel whose delivery stays unacknowledged past
# consumer_timeout (30 min by default): deploy/rabbitmq.conf and this broker raise it to 2 h.
CONSUMER_TIMEOUT_MS = 7_200_000


class RabbitMQError(RuntimeError):
    """The broker did not start, or stopped (its logs attached)."""


def _required() -> bool:
    return os.environ.get("ISKA_REQUIRE_RABBITMQ", "") in {"1", "true", "yes"}


def rabbitmq_available() -> str | None:
    """None when RabbitMQ's server and dagster-celery are both here, else why the Celery tests
    are skipped. CI (ISKA_REQUIRE_RABBITMQ=1, set by .ci/run, which installs RabbitMQ) never
    skips them: what is missing there is an error."""
    reasons = []
    if not os.access(RABBITMQ_SERVER, os.X_OK):
        reasons.append(f"RabbitMQ is not installed (apt-get install rabbitmq-server): no {RABBITMQ_SERVER}")
    try:
        import dagster_celery  # noqa: F401
    except ImportError:
        reasons.append("dagster-celery is not installed (pip install -e '.[celery]')")
    if not reasons:
        return None
    reason = "; ".join(reasons)
    if _required():
        raise RuntimeError(f"ISKA_REQUIRE_RABBITMQ is set but {reason}")
    return reason


def speaks_amqp(port: int) -> bool:
    """Whether a broker on 127.0.0.1:`port` answers the AMQP header with Connection.Start."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(AMQP_HEADER)
            first = connection.recv(1)
    except OSError:
        return False
    return first == bytes([METHOD_FRAME])


def render_config(port: int, log_dir: Path) -> str:
    """rabbitmq.conf: AMQP on loopback only, guest (loopback only, as by default), no plugins."""
    return f"""\
listeners.tcp.default = 127.0.0.1:{port}
loopback_users.guest = true
consumer_timeout = {CONSUMER_TIMEOUT_MS}
log.console = false
log.file = {log_dir / "rabbit.log"}
log.file.level = warning
"""


class RabbitMQ:
    """One RabbitMQ node in `directory`. Use as a context manager: started (and ready) on entry,
    stopped on exit; the logs stay in `directory`."""

    def __init__(self, directory: Path, startup_seconds: float = STARTUP_SECONDS) -> None:
        self.directory = Path(directory)
        self.startup_seconds = startup_seconds
        self.port, self.dist_port = free_ports(2)
        self.node = f"iska-test-{self.port}@localhost"
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL for Celery (kombu's pyamqp transport)."""
        return f"pyamqp://guest:guest@127.0.0.1:{self.port}//"

    def __enter__(self) -> RabbitMQ:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """rabbitmq-server's variables: every file, port and name of this node its own."""
        folder = self.directory
        return {
            **os.environ,
            "HOME": str(folder),  # the Erlang cookie is $HOME/.erlang.cookie
            "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
            # Erlang distribution and the port mapper on loopback only
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "log").mkdir(exist_ok=True)
        (self.directory / "rabbitmq.conf").write_text(render_config(self.port, self.directory / "log"))
        (self.directory / "rabbitmq-env.conf").write_text("# this node's settings are its environment\n")
        (self.directory / "enabled_plugins").write_text("[].\n")
        self._output = (self.directory / "rabbitmq-server.out").open("ab")
        atexit.register(self.stop)  # a test run that exits without teardown leaves no broker behind
        self._process = subprocess.Popen(
            [str(RABBITMQ_SERVER)],
            cwd=self.directory,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the Erlang VM and its helpers in a group of their own
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_seconds
        while not speaks_amqp(self.port):
            if self._process is not None and self._process.poll() is not None:
                raise RabbitMQError(
                    f"rabbitmq-server exited (code {self._process.returncode}) while starting\n"
                    + self.logs_tail()
                )
            if time.monotonic() > deadline:
                raise RabbitMQError(
                    f"RabbitMQ did not answer on port {self.port} within {self.startup_seconds:.0f} s\n"
                    + self.logs_tail()
                )
            time.sleep(POLL_SECONDS)  # polling interval, not a synchronisation delay

    def stop(self) -> None:
        """SIGTERM (the server script stops the node properly), SIGKILL to its whole group for
        what still runs after STOP_SECONDS. Idempotent; the logs stay."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_SECONDS)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the VM, should it outlive its script
            if process.poll() is None:
                process.wait(timeout=5)
        if self._output is not None:
            self._output.close()
            self._output = None
        atexit.unregister(self.stop)

    def logs_tail(self, lines: int = 30) -> str:
        parts = []
        for path in [self.directory / "rabbitmq-server.out", *sorted((self.directory / "log").glob("*.log"))]:
            text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else "(no file)"
            parts.append(f"--- {path.name} ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)
