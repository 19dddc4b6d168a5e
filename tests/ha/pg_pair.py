"""A throw-away PostgreSQL primary and streaming standby on free ports, for the high-availability tests.

The production shape of docs/operations.md (故障切换 Failover) in miniature: ``initdb`` for the primary in a
temporary directory (wal_level replica, a physical replication slot, trust for 127.0.0.1 replication),
``pg_basebackup -R -S <slot>`` for the standby, both started with ``pg_ctl``, and streaming confirmed in
``pg_stat_replication`` before the pair is handed out. :func:`pg_pair` stops both servers and deletes the
directory whatever happens (``pg_ctl stop -m immediate``; the directory is removed even when a server never
started).

PostgreSQL refuses to run as root: when the tests run as root (CI), every server command runs as the
``postgres`` user (``runuser -u postgres --``) and the directory belongs to it. The shared server on 5432 is
never touched: the pair listens on two free ports of 127.0.0.1 and keeps its sockets in its own directory.

``sync=True`` makes the standby synchronous (``synchronous_standby_names``): a commit returns only once the
standby has the WAL, so promoting it loses no committed transaction. ``sync=False`` is asynchronous streaming:
the last commits before a crash of the primary may be missing on the promoted standby.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

STANDBY_NAME = "sg_standby"
SLOT = "sg_standby_slot"
DB = "settleguard"


def find_bindir() -> Path | None:
    """``SETTLEGUARD_TEST_PG_BIN`` if it has them, else the newest /usr/lib/postgresql/<n>/bin with initdb, pg_ctl
    and pg_basebackup; None when there is none."""
    given = os.environ.get("SETTLEGUARD_TEST_PG_BIN")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                   key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0, reverse=True)
    candidates = ([given] if given else []) + found  # a wrong override never hides installed binaries
    for c in candidates:
        if c and all((Path(c) / b).is_file() for b in ("initdb", "pg_ctl", "pg_basebackup")):
            return Path(c)
    return None


def unavailable_reason() -> str | None:
    """Why a pair cannot be built here (no binaries; root without a postgres user), or None."""
    if find_bindir() is None:
        return ("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found in /usr/lib/postgresql/*/bin "
                "or SETTLEGUARD_TEST_PG_BIN")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the servers as (PostgreSQL refuses root)"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing (needed to start PostgreSQL as the postgres user)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PairError(RuntimeError):
    """A server command failed; the message carries its output."""


@dataclass
class PgPair:
    base: Path
    bindir: Path
    sync: bool
    primary_port: int = 0
    standby_port: int = 0
    log: list[str] = field(default_factory=list)

    # --- paths and URLs --------------------------------------------------------------------------------

    @property
    def primary_dir(self) -> Path:
        return self.base / "primary"

    @property
    def standby_dir(self) -> Path:
        return self.base / "standby"

    def url(self, port: int, db: str = DB) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{db}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def standby_url(self) -> str:
        return self.url(self.standby_port)

    @property
    def multi_host_url(self) -> str:
        """Both servers; libpq tries them in order and keeps the one that accepts writes."""
        return (f"postgresql+psycopg://postgres@/{DB}?host=127.0.0.1:{self.primary_port}"
                f"&host=127.0.0.1:{self.standby_port}&target_session_attrs=read-write&connect_timeout=3")

    def dsn(self, port: int, db: str = DB) -> str:
        return f"host=127.0.0.1 port={port} user=postgres dbname={db} connect_timeout=3"

    # --- running commands as the postgres user --------------------------------------------------------

    def _cmd(self, *args: str, timeout: float = 120) -> str:
        argv = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        # Output to a file, not a pipe: the server pg_ctl starts inherits the descriptors, and a pipe would
        # then never reach end-of-file.
        with tempfile.TemporaryFile() as out:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout, cwd=self.base,
                                  env={**os.environ, "LC_ALL": "C.UTF-8", "PGCONNECT_TIMEOUT": "5"})
            out.seek(0)
            text = out.read().decode(errors="replace")
        self.log.append(f"$ {' '.join(args)} -> {proc.returncode}\n{text}")
        if proc.returncode != 0:
            raise PairError(f"{' '.join(args)} exited {proc.returncode}:\n{text}\n" + self.server_logs())
        return text

    def server_logs(self) -> str:
        out = []
        for name in ("primary", "standby"):
            p = self.base / f"{name}.log"
            if p.exists():
                out.append(f"--- {name}.log (end)\n{p.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    # --- building the pair -----------------------------------------------------------------------------

    def start(self) -> None:
        self._cmd("initdb", "-D", str(self.primary_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.primary_port),
            "unix_socket_directories": f"'{self.base}'",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "max_replication_slots": "5",
            "hot_standby": "on",
            "wal_keep_size": "'64MB'",
            # pg_ctl stop -m immediate kills the server, not the machine: what it wrote is in the page cache and
            # survives, so the test skips fsync (10 ms a commit on this disk); production keeps fsync on.
            "fsync": "off",
            "synchronous_commit": "on",
            "synchronous_standby_names": "''",  # set once the standby streams (commits would wait for it)
            "max_connections": "60",
            "shared_buffers": "'32MB'",
        }
        with (self.primary_dir / "postgresql.conf").open("a", encoding="utf-8") as f:
            f.write("\n# settleguard HA test (tests/ha/pg_pair.py)\n")
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        with (self.primary_dir / "pg_hba.conf").open("a", encoding="utf-8") as f:
            f.write("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
        self._cmd("pg_ctl", "-D", str(self.primary_dir), "-l", str(self.base / "primary.log"), "-w", "-t", "60",
                  "start")
        with psycopg.connect(self.dsn(self.primary_port, "postgres"), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {DB}")
            c.execute("SELECT pg_create_physical_replication_slot(%s)", (SLOT,))
        self._cmd("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
                  "-D", str(self.standby_dir), "-R", "-S", SLOT, "-X", "stream", "-c", "fast", "--no-sync")
        with (self.standby_dir / "postgresql.auto.conf").open("a", encoding="utf-8") as f:
            # the standby's own port, and the name the primary's synchronous_standby_names waits for
            f.write(f"port = {self.standby_port}\n")
            f.write(f"primary_conninfo = 'host=127.0.0.1 port={self.primary_port} user=postgres "
                    f"application_name={STANDBY_NAME}'\n")
        self._cmd("pg_ctl", "-D", str(self.standby_dir), "-l", str(self.base / "standby.log"), "-w", "-t", "60",
                  "start")
        if self.sync:
            with psycopg.connect(self.dsn(self.primary_port, "postgres"), autocommit=True) as c:
                c.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'")
                c.execute("SELECT pg_reload_conf()")
        self.wait_streaming()

    def wait_streaming(self, timeout: float = 30.0) -> None:
        """Until the primary sees the standby streaming (and, for ``sync``, as the synchronous one)."""
        want = "sync" if self.sync else "async"
        deadline = time.monotonic() + timeout
        seen: list[tuple[str, str]] = []
        while time.monotonic() < deadline:
            with psycopg.connect(self.dsn(self.primary_port, "postgres"), autocommit=True) as c:
                seen = [(str(a), str(b)) for a, b in c.execute(
                    "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (STANDBY_NAME,)).fetchall()]
            if ("streaming", want) in seen:
                return
            time.sleep(0.2)
        raise PairError(f"standby not streaming ({want}) after {timeout:.0f} s: {seen}\n{self.server_logs()}")

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        with psycopg.connect(self.dsn(self.primary_port, "postgres"), autocommit=True) as c:
            lsn = c.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with psycopg.connect(self.dsn(self.standby_port, "postgres"), autocommit=True) as c:
                behind = c.execute("SELECT pg_wal_lsn_diff(%s, pg_last_wal_replay_lsn()) > 0",
                                   (lsn,)).fetchone()[0]  # type: ignore[index]
            if not behind:
                return
            time.sleep(0.05)
        raise PairError(f"standby did not replay up to {lsn} within {timeout:.0f} s")

    # --- failover ------------------------------------------------------------------------------------

    def crash_primary(self) -> None:
        """``pg_ctl stop -m immediate``: the primary dies as in a power cut (no checkpoint, clients cut off)."""
        self._cmd("pg_ctl", "-D", str(self.primary_dir), "-m", "immediate", "-w", "stop")

    def detach_standby(self) -> None:
        """Cut the standby off the primary (``primary_conninfo = ''``): from now on it receives nothing, as an
        asynchronous standby that lags behind (network trouble, a slow disk) when the primary dies."""
        with psycopg.connect(self.dsn(self.standby_port, "postgres"), autocommit=True) as c:
            c.execute("ALTER SYSTEM SET primary_conninfo = ''")
            c.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with psycopg.connect(self.dsn(self.primary_port, "postgres"), autocommit=True) as c:
                if not c.execute("SELECT 1 FROM pg_stat_replication").fetchall():
                    return
            time.sleep(0.1)
        raise PairError("the standby did not disconnect")

    def promote(self) -> None:
        """``pg_ctl promote``: the standby leaves recovery and accepts writes."""
        self._cmd("pg_ctl", "-D", str(self.standby_dir), "-w", "-t", "60", "promote")

    def stop(self) -> None:
        for d in (self.standby_dir, self.primary_dir):
            if (d / "postmaster.pid").exists():
                with contextlib.suppress(Exception):
                    self._cmd("pg_ctl", "-D", str(d), "-m", "immediate", "-w", "-t", "30", "stop")


@contextlib.contextmanager
def pg_pair(*, sync: bool) -> Iterator[PgPair]:
    """A started primary + standby, stopped and deleted afterwards (also when starting or the test fails)."""
    bindir = find_bindir()
    if bindir is None:
        raise PairError(unavailable_reason() or "no PostgreSQL binaries")
    base = Path(tempfile.mkdtemp(prefix="sg-ha-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    base.chmod(0o700)
    ports = {free_port()}
    while len(ports) < 2:
        ports.add(free_port())
    first, second = sorted(ports)
    pair = PgPair(base, bindir, sync, first, second)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()
        shutil.rmtree(base, ignore_errors=True)
