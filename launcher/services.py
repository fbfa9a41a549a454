"""Private PostgreSQL and Redis servers for one local Airflow stack: free ports, temporary folders.

The production topology needs both; a user's machine (or a CI runner) may run neither, or run
someone else's. So the stack never connects to a server it did not start: each ``Services``
initialises its own PostgreSQL cluster and starts its own Redis, and removes both on ``stop()``.
Binaries come from Debian's ``postgresql`` and ``redis-server`` packages (``make test`` installs
them when missing and it runs as root). PostgreSQL refuses to run as root, so as root the
cluster runs as the ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from launcher.ports import free_port
from launcher.processes import stop_process_group

PG_USER = "postgres"
#: a free port can be taken by another run before our server binds it; then we pick another
PORT_ATTEMPTS = 3
ADDRESS_IN_USE = "Address already in use"


def _binary(name: str, package: str) -> str:
    """``name`` from PATH or Debian's versioned PostgreSQL folder; a clear error naming the package."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(
            f"'{name}' is missing: install Debian's '{package}' package "
            f"(apt-get install {package}); `make test` does it when run as root"
        )
    return found


class Services:
    """PostgreSQL on ``pg_port`` and Redis on ``redis_port``, both on 127.0.0.1, both ours."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="patchflow-services-"))
        self.pg_port, self.redis_port = free_port(), free_port()
        self._redis: subprocess.Popen | None = None
        self._pg_started = False

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def dsn(self, db: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{PG_USER}@127.0.0.1:{self.pg_port}/{db}"

    def psql_args(self, db: str = "postgres") -> list[str]:
        return [
            _binary("psql", "postgresql-client"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.pg_port),
            "-U",
            PG_USER,
            "-d",
            db,
        ]

    def psql(self, sql: str, db: str = "postgres") -> None:
        subprocess.run(
            [*self.psql_args(db), "-v", "ON_ERROR_STOP=1", "-qc", sql],
            check=True,
            capture_output=True,
            text=True,
        )

    def start(self) -> None:
        try:
            self._start_postgres()
            self._start_redis()
        except BaseException:
            self.stop()
            raise

    def _as_db_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        shutil.chown(self.folder, user=PG_USER)
        return ["runuser", "-u", PG_USER, "--", *cmd]

    def _start_postgres(self) -> None:
        data = self.folder / "pgdata"
        initdb = _binary("initdb", "postgresql")
        self._run(self._as_db_owner([initdb, "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8"]))
        for _ in range(PORT_ATTEMPTS):
            log = self.folder / "postgres.log"
            try:
                self._run(self._as_db_owner([_binary("pg_ctl", "postgresql"), *self._pg_start_args(log)]))
            except RuntimeError:
                if ADDRESS_IN_USE not in (log.read_text(errors="replace") if log.exists() else ""):
                    raise
                self.pg_port = free_port()  # another run took the port between pick and bind
                continue
            self._pg_started = True
            return
        raise RuntimeError(f"PostgreSQL found no free port in {PORT_ATTEMPTS} attempts")

    def _pg_start_args(self, log: Path) -> list[str]:
        options = f"-p {self.pg_port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        return ["-D", str(self.folder / "pgdata"), "-o", options, "-l", str(log), "-w", "start"]

    @staticmethod
    def _run(cmd: list[str]) -> None:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-800:]}")

    def _start_redis(self) -> None:
        for _ in range(PORT_ATTEMPTS):
            if self._try_redis():
                return
            self.redis_port = free_port()  # another run took the port between pick and bind
        raise RuntimeError(f"redis-server found no free port in {PORT_ATTEMPTS} attempts")

    def _try_redis(self) -> bool:
        """True once our redis-server is ready; False if its port was taken meanwhile."""
        server, log = _binary("redis-server", "redis-server"), self.folder / "redis.log"
        args = ["--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with log.open("w") as sink:
            self._redis = subprocess.Popen(
                [server, *args, "--dir", str(self.folder)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if self._redis.poll() is not None:
                self._redis = None
                if ADDRESS_IN_USE in text:
                    return False
                raise RuntimeError(f"redis-server exited: {text[-500:]}")
            # its own log, not a connection: a connection could reach another run's server
            if "Ready to accept connections" in text:
                return True
            time.sleep(0.1)
        raise RuntimeError("redis-server did not become ready within 20 s")

    def stop(self) -> None:
        if self._redis is not None:
            stop_process_group(self._redis)
            self._redis = None
        if self._pg_started:
            pg_ctl = _binary("pg_ctl", "postgresql")
            cmd = self._as_db_owner(
                [pg_ctl, "-D", str(self.folder / "pgdata"), "-m", "immediate", "-w", "stop"]
            )
            subprocess.run(cmd, check=False, capture_output=True)
            self._pg_started = False
        shutil.rmtree(self.folder, ignore_errors=True)
