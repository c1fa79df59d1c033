"""`hakeeper store serve --socket PATH` claims PATH safely: a regular file, a directory, a
symlink, a socket someone else made or anybody still serves are refused with an InputError and
left exactly as they were; only a dead socket this server created is replaced. The socket is
created with mode 0600. Real sockets and a real server process (killed to leave a stale one)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hakeeper.coord.localserver import MARKER_SUFFIX, LocalServer, RemoteStore
from hakeeper.errors import InputError

SRC = str(Path(__file__).resolve().parents[2] / "src")


def start(path: Path) -> LocalServer:
    async def main() -> LocalServer:
        server = LocalServer(str(path))
        await server.start()
        await server.close()
        return server

    return asyncio.run(main())


def refused(path: Path) -> str:
    marker = Path(str(path) + MARKER_SUFFIX)
    had_marker = marker.exists()
    with pytest.raises(InputError) as info:
        start(path)
    problem = info.value.problems[0]
    assert problem.field == "--socket" and str(path) in problem.message
    assert marker.exists() == had_marker, "a refused start leaves nothing behind"
    return problem.message


def test_a_regular_file_survives_with_its_contents(tmp_path: Path) -> None:
    path = tmp_path / "precious"
    path.write_text("do not delete\n")
    assert "not a socket" in refused(path)
    assert path.read_text() == "do not delete\n"


def test_a_directory_survives(tmp_path: Path) -> None:
    path = tmp_path / "dir"
    path.mkdir()
    (path / "inside").write_text("x")
    assert "directory" in refused(path)
    assert (path / "inside").read_text() == "x"


def test_a_symlink_and_its_target_survive(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("t")
    path = tmp_path / "link"
    path.symlink_to(target)
    assert "symbolic link" in refused(path)
    assert path.is_symlink() and target.read_text() == "t"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    refused(dangling)
    assert dangling.is_symlink()


def test_a_live_socket_of_another_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sock"
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(path))
    other.listen()
    try:
        assert "listening" in refused(path)
        # Still the other program's: it accepts a connection.
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(path))
        client.close()
    finally:
        other.close()


def test_a_dead_socket_hakeeper_did_not_create_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    assert "did not create" in refused(path)
    assert stat.S_ISSOCK(path.lstat().st_mode)


def test_a_second_server_on_a_live_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sock"

    async def main() -> None:
        first = LocalServer(str(path))
        await first.start()
        try:
            with pytest.raises(InputError):
                await LocalServer(str(path)).start()
            client = RemoteStore(str(path))
            await client.put("/k", b"v")  # the first still serves
            await client.close()
        finally:
            await first.close()
        assert not path.exists() and not Path(str(path) + MARKER_SUFFIX).exists()

    asyncio.run(main())


def test_the_socket_is_private(tmp_path: Path) -> None:
    path = tmp_path / "store.sock"

    async def main() -> None:
        server = LocalServer(str(path))
        old = os.umask(0)
        try:
            await server.start()
        finally:
            os.umask(old)
        try:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        finally:
            await server.close()

    asyncio.run(main())


SERVE = """
import asyncio, sys
from hakeeper.coord.localserver import LocalServer
async def main():
    await LocalServer(sys.argv[1]).start()
    print("ready", flush=True)
    await asyncio.sleep(1000)
asyncio.run(main())
"""


def test_a_stale_socket_of_a_killed_server_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "store.sock"
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(path)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        before = path.lstat().st_ino
        # While it lives, it is not replaced.
        refused(path)
        assert path.lstat().st_ino == before
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert stat.S_ISSOCK(path.lstat().st_mode)  # left behind by the killed server
    t0 = time.monotonic()

    async def main() -> None:
        server = LocalServer(str(path))
        await server.start()
        try:
            # A live listener again (the inode number may well be reused, so it proves nothing).
            client = RemoteStore(str(path))
            await client.put("/k", b"v")
            assert (await client.get("/k")) is not None
            await client.close()
        finally:
            await server.close()

    asyncio.run(main())
    assert time.monotonic() - t0 < 5


def test_the_cli_refuses_a_regular_file_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "precious"
    path.write_text("keep me")
    out = subprocess.run(
        [sys.executable, "-m", "hakeeper", "store", "serve", "--memory", "--socket", str(path)],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=120,  # a Python start on a loaded machine
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "not a socket" in out.stderr
    assert path.read_text() == "keep me"
