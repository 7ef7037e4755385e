"""SQL that must never run in log queries: reading files, writing files, reaching out.

Shared by the attack tests of /logs/query and `pygate logs serve`. Templates take
{secret} (a file outside the store), {target} (a path that must stay absent),
{port} (a loopback Listener that must see no connection).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def bait(outside: Path) -> Iterator[dict]:
    """A secret file in `outside` (a folder no store uses), that folder for paths to try
    to write, and a listener to try to reach."""
    secret = outside / "secret.txt"
    token = f"SECRET-{uuid.uuid4().hex}"
    secret.write_text(token + "\n")
    listener = Listener()
    try:
        yield {"secret": secret, "token": token, "outside": outside, "listener": listener}
    finally:
        listener.close()


class Listener:
    """A loopback TCP listener that only counts who connects to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


# Each reads the secret file, one way or another.
READS = [
    "SELECT * FROM file('{secret}', 'LineAsString')",
    "SELECT * FROM FiLe('{secret}', 'LineAsString')",
    "SELECT file('{secret}')",
    "SELECT FILE('{secret}') AS x",
    "select/**/*/**/from/**/file('{secret}','LineAsString')",
    "SELECT * FROM pygate.requests WHERE path IN (SELECT * FROM file('{secret}', 'LineAsString'))",
    "WITH s AS (SELECT * FROM file('{secret}', 'LineAsString')) SELECT * FROM s",
    "SELECT * FROM (SELECT * FROM file('{secret}', 'LineAsString'))",
    "SELECT 1 AS a UNION ALL SELECT * FROM file('{secret}', 'LineAsString')",
    "SELECT * FROM pygate.requests AS r RIGHT JOIN file('{secret}', 'LineAsString') AS f ON 1",
    "SELECT * FROM view(SELECT * FROM file('{secret}', 'LineAsString'))",
    "SELECT (SELECT file('{secret}'))",
    "SELECT * APPLY(file) FROM (SELECT '{secret}' AS p)",
    "SELECT arrayMap(p -> file(p), ['{secret}'])",
    "SELECT * FROM file('{secret}', 'LineAsString') SETTINGS readonly = 0",
    "SELECT * FROM file('{secret}', 'LineAsString') -- ; SELECT 1",
    "SELECT 1; SELECT * FROM file('{secret}', 'LineAsString')",
    "DESCRIBE file('{secret}', 'CSVWithNames')",
    "DESC TABLE file('{secret}', 'CSVWithNames')",
    "EXPLAIN SYNTAX SELECT * FROM file('{secret}', 'LineAsString')",
    "SELECT * FROM merge('system', '^one$')",
    "SELECT * FROM system.stack_trace",
    "SELECT * FROM system.processes",
    "SELECT * FROM system.server_settings",
    "SELECT * FROM system.users",
    "SELECT * FROM `system`.`query_log`",
    "SELECT * FROM pygate.requests WHERE request_id IN system.processes",
    "SELECT getServerSetting('user_files_path')",
    "SELECT dictGet('no_dict', 'x', 1)",
    "SELECT * FROM dictionary('no_dict')",
    "SELECT joinGet('pygate.requests', 'path', 'x')",
    "SELECT 1 FORMAT Template",
    "SHOW PROCESSLIST",
    "SHOW GRANTS",
    "SHOW CREATE USER default",
]
# Each tries to create or overwrite `target`.
WRITES = [
    "SELECT 'pwned' INTO OUTFILE '{target}'",
    "SELECT 'pwned' INTO OUTFILE '{target}' TRUNCATE FORMAT LineAsString",
    "SELECT 'pwned' INTO OUTFILE '{target}' AND STDOUT",
    "SELECT 'pwned' INTO OUTFILE '{target}' COMPRESSION 'gzip'",
    "SHOW TABLES INTO OUTFILE '{target}'",
    "INSERT INTO FUNCTION file('{target}', 'LineAsString') SELECT 'pwned' "
    "SETTINGS engine_file_truncate_on_insert = 1",
    "INSERT INTO TABLE FUNCTION file('{target}', 'LineAsString') VALUES ('pwned')",
    "INSERT INTO pygate.requests (request_id) VALUES ('pwned')",
    "CREATE TABLE pygate.pwned ENGINE = File(LineAsString, '{target}') AS SELECT 'pwned'",
    "BACKUP TABLE pygate.requests TO File('{target}')",
    "ATTACH TABLE pygate.pwned (s String) ENGINE = File(LineAsString, '{target}')",
    "SYSTEM FLUSH LOGS",
    "KILL QUERY WHERE 1",
    "SET readonly = 0",
    "DROP TABLE pygate.requests",
    "ALTER TABLE pygate.requests DELETE WHERE 1",
]
# Each tries to connect to the loopback listener.
NETWORK = [
    "SELECT * FROM url('http://127.0.0.1:{port}/x', 'LineAsString')",
    "SELECT * FROM URL('http://127.0.0.1:{port}/x', 'LineAsString', 's String')",
    "INSERT INTO FUNCTION url('http://127.0.0.1:{port}/x', 'CSV', 'a Int8') SELECT 1",
    "SELECT * FROM s3('http://127.0.0.1:{port}/bucket/key.csv', 'CSV', 'a Int8')",
    "SELECT * FROM remote('127.0.0.1:{port}', system.one)",
    "SELECT * FROM remoteSecure('127.0.0.1:{port}', system.one)",
    "SELECT * FROM cluster('default', system.one)",
    "SELECT * FROM mysql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
    "SELECT * FROM jdbc('jdbc:mysql://127.0.0.1:{port}/db', 't')",
    "SELECT * FROM odbc('DSN=x', 'db', 't')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:{port}/x', 'CSV', 'a Int8')",
    "SELECT * FROM azureBlobStorage('http://127.0.0.1:{port}/acct', 'c', 'x.csv')",
    "SELECT * FROM icebergS3('http://127.0.0.1:{port}/bucket/t/')",
    "SELECT * FROM deltaLake('http://127.0.0.1:{port}/bucket/t/')",
    "SELECT * FROM executable('cat {secret}', 'LineAsString', 's String')",
    "SELECT * FROM input('a Int8')",
    "SELECT * FROM (SELECT 1) AS a JOIN url('http://127.0.0.1:{port}/x', 'LineAsString') AS b ON 1",
]
