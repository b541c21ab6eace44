"""A real Kannel 1.4.5 for end-to-end tests: bearerbox, smsbox and the fakesmsc test client
(Debian's `kannel` and `kannel-extras`), run from a kannel.conf generated in a temporary folder,
on free loopback ports. ISKA talks to it exactly as to a production Kannel (smsbox's sendsms
interface, DLR URLs, an sms-service get-url for inbound SMS); fakesmsc plays the operator and
the farmers' phones: it records the MT messages Kannel delivers and types MO messages in.

Everything is synchronised by polling with a deadline (bearerbox's admin status, the sendsms
port), never by sleeping a guess; the logs stay in the folder, and their tails are in every
error. CI installs Kannel (.ci/run); without it `kannel_available()` says why to skip.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import pytest

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
STARTUP_SECONDS = 20.0  # a guard against a hung start on a loaded machine, not a timing check
STOP_SECONDS = 10.0  # bearerbox needs about 3 s to shut down after SIGTERM
POLL_SECONDS = 0.05
ADMIN_PASSWORD = "kannel-admin"
# fakesmsc reads stdin with fgets() into a 256-byte buffer: a longer line would be cut in two
# MO messages
MO_LINE_LIMIT = 255
# no proxy for loopback, whatever the environment says
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_GOT_MESSAGE = re.compile(r"Got message \d+: <(?P<line>.*)>$")
_SENT_MESSAGE = re.compile(r"fakesmsc: sent message (?P<n>\d+)$")
# bearerbox logs a port it could not bind and runs on without it: fail at once, not at the deadline
_FATAL = re.compile(r"PANIC:|bind failed|Address already in use")


class KannelError(RuntimeError):
    """Kannel did not start, or stopped, or did not do what was waited for (logs attached)."""


def kannel_available() -> str | None:
    """None when Kannel's three programs are here, else why the Kannel tests are skipped. CI
    (ISKA_REQUIRE_KANNEL=1, set by .ci/run, which installs Kannel) never skips them: a missing
    Kannel there is an error, not a skip."""
    missing = [str(path) for path in (BEARERBOX, SMSBOX, FAKESMSC) if not os.access(path, os.X_OK)]
    if not missing:
        return None
    reason = f"Kannel is not installed (apt-get install kannel kannel-extras): no {', '.join(missing)}"
    if os.environ.get("ISKA_REQUIRE_KANNEL", "") in {"1", "true", "yes"}:
        raise RuntimeError(f"ISKA_REQUIRE_KANNEL is set but {reason}")
    return reason


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (the sockets are held together so no port repeats)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class KannelPorts:
    admin: int
    smsbox: int
    sendsms: int
    fake: int

    @classmethod
    def free(cls) -> KannelPorts:
        admin, smsbox, sendsms, fake = free_ports(4)
        return cls(admin=admin, smsbox=smsbox, sendsms=sendsms, fake=fake)


@dataclass(frozen=True)
class ReceivedSms:
    """One SMS (one part, for a concatenated message) as fakesmsc got it from Kannel.

    `text` is what the farmer reads: UCS-2 (coding=2) data decoded from UTF-16BE, GSM text as
    Kannel's UTF-8. `raw` is fakesmsc's line; `udh` the user data header, b"" when none."""

    sender: str
    receiver: str
    text: str
    raw: str
    udh: bytes = b""
    data: bytes = field(default=b"", repr=False)

    @property
    def concat(self) -> tuple[int, int, int] | None:
        """(reference, parts, this part's number) from a concatenation header, else None."""
        return _concat_info(self.udh)


def _quote(value: str) -> str:
    """A kannel.conf string value; quotes and line breaks cannot be written in one."""
    if '"' in value or "\n" in value or "\r" in value:
        raise ValueError(f"kannel.conf cannot hold {value!r}")
    return f'"{value}"'


def render_config(
    directory: Path,
    ports: KannelPorts,
    username: str,
    password: str,
    get_url: str | None = None,
    throughput: float | None = None,
) -> str:
    """kannel.conf for one bearerbox, one smsbox and one fake SMSC, all on 127.0.0.1.

    The sms-service answers nothing (`max-messages = 0`): ISKA replies through its own outbox.
    `mo-recode` gives the get-url UTF-8 text for a UCS-2 MO message (ISKA's inbound URL has no
    %C charset). The sendsms user may send concatenated SMS, as ISKA's long forecasts are."""
    smsc_throughput = f"throughput = {throughput:g}\n" if throughput else ""
    service = f"get-url = {_quote(get_url)}" if get_url else 'text = "unused"'
    return f"""\
group = core
admin-port = {ports.admin}
admin-interface = "127.0.0.1"
admin-password = {_quote(ADMIN_PASSWORD)}
smsbox-port = {ports.smsbox}
smsbox-interface = "127.0.0.1"
log-file = {_quote(str(directory / "bearerbox.log"))}
log-level = 0
access-log = {_quote(str(directory / "access.log"))}
dlr-storage = internal

group = smsbox
bearerbox-host = "127.0.0.1"
bearerbox-port = {ports.smsbox}
sendsms-port = {ports.sendsms}
sendsms-interface = "127.0.0.1"
log-file = {_quote(str(directory / "smsbox.log"))}
log-level = 0
access-log = {_quote(str(directory / "smsbox-access.log"))}
mo-recode = true

group = smsc
smsc = fake
smsc-id = fake
port = {ports.fake}
our-host = "127.0.0.1"
connect-allow-ip = "127.0.0.1"
{smsc_throughput}
group = sendsms-user
username = {_quote(username)}
password = {_quote(password)}
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
{service}
"""


def _concat_info(udh: bytes) -> tuple[int, int, int] | None:
    """The concatenation element (8- or 16-bit reference) of a user data header."""
    position = 1  # after the header length
    while position + 1 < len(udh):
        element, length = udh[position], udh[position + 1]
        body = udh[position + 2 : position + 2 + length]
        if element == 0x00 and length == 3:
            return body[0], body[1], body[2]
        if element == 0x08 and length == 4:
            return (body[0] << 8) | body[1], body[2], body[3]
        position += 2 + length
    return None


def _looks_ucs2(data: bytes) -> bool:
    """Whether UDH data is UCS-2: fakesmsc's `udh ... data ...` lines do not say the coding.

    Kannel hands GSM text over as UTF-8, which has no control bytes; UCS-2 text in the Latin
    and IPA ranges (Twi, Ewe, Hausa, French) always has high bytes 0x00-0x02."""
    return len(data) % 2 == 0 and any(byte < 0x20 and byte not in b"\t\n\r" for byte in data)


def _decode(data: bytes, ucs2: bool) -> str:
    return data.decode("utf-16-be" if ucs2 else "utf-8", errors="replace")


def _unquote(value: str) -> bytes:
    """Kannel's URL encoding (octstr_url_encode: a space is `+`) back to bytes."""
    return urllib.parse.unquote_to_bytes(value.replace("+", " "))


def parse_fakesmsc_line(line: str) -> ReceivedSms:
    """One `Got message` line: `sender receiver text TEXT`, `... data DATA`, `... ucs-2 DATA`
    or `... udh UDH data DATA` (DATA and UDH URL-encoded)."""
    sender, receiver, kind, rest = [*line.split(" ", 3), "", "", ""][:4]
    if kind == "text":
        return ReceivedSms(sender, receiver, rest, line, data=rest.encode())
    if kind in {"ucs-2", "ucs2"}:
        data = _unquote(rest)
        return ReceivedSms(sender, receiver, _decode(data, True), line, data=data)
    if kind == "data":
        data = _unquote(rest)
        return ReceivedSms(sender, receiver, _decode(data, False), line, data=data)
    if kind == "udh":
        udh_part, _, data_part = rest.partition(" data ")
        udh, data = _unquote(udh_part), _unquote(data_part)
        return ReceivedSms(sender, receiver, _decode(data, _looks_ucs2(data)), line, udh=udh, data=data)
    raise KannelError(f"fakesmsc printed a message line this parser does not know: {line!r}")


def join_parts(parts: list[ReceivedSms]) -> list[ReceivedSms]:
    """Whole messages, as a phone shows them, in order of first arrival: concatenated parts
    joined in part order (left out until all arrived), single SMS as they are."""
    groups: dict[int | tuple[str, str, int, int], list[ReceivedSms]] = {}
    for index, part in enumerate(parts):
        info = part.concat
        groups.setdefault((part.sender, part.receiver, info[0], info[1]) if info else index, []).append(part)
    return [whole for group in groups.values() if (whole := _joined(group)) is not None]


def _joined(group: list[ReceivedSms]) -> ReceivedSms | None:
    numbered = {part.concat[2]: part for part in group if part.concat}
    if not numbered:
        return group[0]
    first = next(iter(numbered.values()))
    total = first.concat[1] if first.concat else 0
    if sorted(numbered) != list(range(1, total + 1)):
        return None
    ordered = [numbered[n] for n in range(1, total + 1)]
    data = b"".join(part.data for part in ordered)
    text = _decode(data, any(_looks_ucs2(part.data) for part in ordered))
    return ReceivedSms(first.sender, first.receiver, text, "\n".join(part.raw for part in ordered), data=data)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no file)"
    return "\n".join(text.splitlines()[-lines:])


def _http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """Status and body of a GET on loopback (an HTTP error status is an answer, not a failure)."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", errors="replace")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class KannelGateway:
    """bearerbox + smsbox + fakesmsc on free loopback ports, from a kannel.conf in `directory`.

    Use as a context manager: started on entry (ready when it returns), every process stopped on
    exit, the logs left in `directory`."""

    def __init__(
        self,
        directory: Path,
        username: str,
        password: str,
        get_url: str | None = None,
        throughput: float | None = None,
        startup_seconds: float = STARTUP_SECONDS,
    ) -> None:
        self.directory = Path(directory)
        self.username = username
        self.password = password
        self.get_url = get_url
        self.throughput = throughput
        self.startup_seconds = startup_seconds
        self.ports = KannelPorts.free()
        self.config_path = self.directory / "kannel.conf"
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._outputs: list[IO[bytes]] = []
        self._typed = 0

    # ---- addresses ------------------------------------------------------------------------------

    @property
    def sendsms_url(self) -> str:
        """smsbox's HTTP interface; ISKA's kannel adapter appends `/cgi-bin/sendsms`."""
        return f"http://127.0.0.1:{self.ports.sendsms}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.admin}"

    # ---- life cycle -----------------------------------------------------------------------------

    def __enter__(self) -> KannelGateway:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Write kannel.conf, start the three programs and wait until each is ready; on any
        failure stop what was started and raise with the logs' tails."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            render_config(
                self.directory, self.ports, self.username, self.password, self.get_url, self.throughput
            ),
            encoding="utf-8",
        )
        atexit.register(self.stop)  # a test run that exits without teardown leaves no Kannel behind
        try:
            self._launch("bearerbox", [str(BEARERBOX), "-v", "2", str(self.config_path)])
            self._wait("bearerbox's admin status", lambda: self._smsc_status() is not None)
            # fakesmsc panics when the fake SMSC's port is not listening: it is once listed
            self._launch("smsbox", [str(SMSBOX), "-v", "2", str(self.config_path)])
            self._launch(
                "fakesmsc",
                [str(FAKESMSC), "-H", "127.0.0.1", "-r", str(self.ports.fake), "-i", "0", "-v", "0"],
                stdin=True,
            )
            self._wait("smsbox (sendsms port and box connection)", self._smsbox_ready)
            self._wait("fakesmsc's connection to the fake SMSC", self._fakesmsc_online)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process started here: SIGTERM (fakesmsc: end of its stdin), SIGKILL for
        what still runs after STOP_SECONDS. Idempotent; the logs stay."""
        fakesmsc = self._processes.get("fakesmsc")
        if fakesmsc is not None and fakesmsc.stdin is not None:
            with contextlib.suppress(OSError):  # a fakesmsc that died leaves a broken pipe
                fakesmsc.stdin.close()
        for process in self._processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in self._processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._processes.clear()
        for output in self._outputs:
            output.close()
        self._outputs.clear()
        atexit.unregister(self.stop)

    def _launch(self, name: str, args: list[str], stdin: bool = False) -> None:
        output = (self.directory / f"{name}.out").open("ab")
        self._outputs.append(output)
        self._processes[name] = subprocess.Popen(
            args,
            cwd=self.directory,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def _wait(self, what: str, ready: Callable[[], bool], seconds: float | None = None) -> None:
        """Poll `ready` until true; KannelError (with logs) at the deadline or when a process died."""
        deadline = time.monotonic() + (seconds if seconds is not None else self.startup_seconds)
        while True:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    raise KannelError(
                        f"{name} exited (code {process.returncode}) while waiting for {what}\n"
                        + self.logs_tail()
                    )
            fatal = self._fatal_line()
            if fatal:
                raise KannelError(f"Kannel failed while waiting for {what}: {fatal}\n" + self.logs_tail())
            if ready():
                return
            if time.monotonic() > deadline:
                raise KannelError(f"timed out waiting for {what}\n" + self.logs_tail())
            time.sleep(POLL_SECONDS)  # polling interval, not a synchronisation delay

    def _fatal_line(self) -> str | None:
        """A fatal line in bearerbox's or smsbox's output: their stderr, at warning level
        (`-v 2`), carries no message texts, unlike fakesmsc's."""
        for name in ("bearerbox", "smsbox"):
            path = self.directory / f"{name}.out"
            text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
            found = next((line for line in text.splitlines() if _FATAL.search(line)), None)
            if found:
                return f"{name}: {found}"
        return None

    # ---- readiness ------------------------------------------------------------------------------

    def status_xml(self) -> ET.Element | None:
        """bearerbox's /status.xml, or None while it does not answer."""
        try:
            status, body = _http_get(
                f"{self.admin_url}/status.xml?password={urllib.parse.quote(ADMIN_PASSWORD)}"
            )
        except OSError:
            return None
        if status != 200:
            return None
        try:
            return ET.fromstring(body)
        except ET.ParseError:
            return None

    def _smsc_status(self) -> str | None:
        """The fake SMSC's status ("connecting", "online 3s", ...), None until it is listed."""
        root = self.status_xml()
        if root is None:
            return None
        for smsc in root.iter("smsc"):
            if smsc.findtext("id") == "fake":
                return smsc.findtext("status") or ""
        return None

    def _smsbox_ready(self) -> bool:
        root = self.status_xml()
        connected = root is not None and any(
            box.findtext("type") == "smsbox" and (box.findtext("status") or "").startswith("on-line")
            for box in root.iter("box")
        )
        return connected and _accepts(self.ports.sendsms)

    def _fakesmsc_online(self) -> bool:
        return (self._smsc_status() or "").startswith("online")

    # ---- the operator's side: fakesmsc ----------------------------------------------------------

    def _fakesmsc_log(self) -> list[str]:
        path = self.directory / "fakesmsc.out"
        if not path.exists():
            return []
        return path.read_text(encoding="utf-8", errors="replace").splitlines()

    def received(self) -> list[ReceivedSms]:
        """The MT messages fakesmsc got so far, one per SMS part, in arrival order.

        fakesmsc polls its connection once a second in interactive mode: wait with
        `wait_received`. `join_parts(received())` gives whole concatenated messages."""
        lines = (_GOT_MESSAGE.search(line) for line in self._fakesmsc_log())
        return [parse_fakesmsc_line(found["line"]) for found in lines if found]

    def wait_received(self, count: int, timeout: float = 10.0) -> list[ReceivedSms]:
        """All received messages once there are at least `count`; KannelError at the deadline."""
        self._wait(f"{count} MT message(s) at fakesmsc", lambda: len(self.received()) >= count, timeout)
        return self.received()

    def type_mo(self, sender: str, receiver: str, text: str, timeout: float = 10.0) -> None:
        """A farmer's SMS from `sender` to the short code `receiver`, into Kannel through
        fakesmsc's stdin; returns once fakesmsc sent it to bearerbox.

        ASCII goes as `text`; anything else as `ucs2` (UTF-16BE, URL-encoded), as a phone would
        send it. One line at a time: fakesmsc select()s on stdin but reads it with fgets(), so a
        second buffered line would wait for the next keystroke."""
        if any(" " in part or not part for part in (sender, receiver)) or "\n" in text or "\r" in text:
            raise ValueError("sender and receiver are single words, and text is one line")
        if text.isascii():
            line = f"{sender} {receiver} text {text}"
        else:
            line = f"{sender} {receiver} ucs2 {urllib.parse.quote(text.encode('utf-16-be'), safe='')}"
        if len(line.encode()) >= MO_LINE_LIMIT:
            raise ValueError(f"fakesmsc reads at most {MO_LINE_LIMIT - 1} bytes a line: {line!r}")
        process = self._processes.get("fakesmsc")
        if process is None or process.stdin is None:
            raise KannelError("fakesmsc is not running")
        process.stdin.write(line.encode() + b"\n")
        process.stdin.flush()
        self._typed += 1
        self._wait(f"fakesmsc to send MO message {self._typed}", lambda: self._sent() >= self._typed, timeout)

    def _sent(self) -> int:
        counts = [int(found["n"]) for line in self._fakesmsc_log() if (found := _SENT_MESSAGE.search(line))]
        return max(counts, default=0)

    # ---- debugging ------------------------------------------------------------------------------

    def logs_tail(self, lines: int = 25) -> str:
        """The last lines of every log in the folder, for error messages."""
        names = ["bearerbox.out", "bearerbox.log", "smsbox.out", "smsbox.log", "fakesmsc.out", "access.log"]
        return "\n".join(f"--- {name} ---\n{_tail(self.directory / name, lines)}" for name in names)


@pytest.fixture
def kannel_gateways(tmp_path: Path) -> Iterator[Callable[..., KannelGateway]]:
    """Start real Kannels on demand: `start(username, password, get_url=None, throughput=None)`
    returns a ready KannelGateway (its logs under the test's tmp_path); all stopped afterwards.
    Skipped, saying why, when Kannel is not installed. Register with
    `pytest_plugins = ["iska_pipelines_tests.kannel"]`."""
    reason = kannel_available()
    if reason:
        pytest.skip(reason)
    started: list[KannelGateway] = []

    def start(
        username: str, password: str, get_url: str | None = None, throughput: float | None = None
    ) -> KannelGateway:
        gateway = KannelGateway(tmp_path / f"kannel{len(started)}", username, password, get_url, throughput)
        started.append(gateway)
        gateway.start()
        return gateway

    try:
        yield start
    finally:
        for gateway in started:
            gateway.stop()
