"""A real ``redis-server`` (Debian's, installed by .ci/run) on a free loopback port, no
persistence, its files in a temp dir: the shared store of --rate_limit_storage.

    with RedisRun(tmp_path) as redis:
        RemoteServer(workdir, f"--rate_limit_storage={redis.url}")
"""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from tests.conftest import free_port
from tests.server import ServerProcess

REDIS_SERVER = shutil.which("redis-server")


class RedisRun(ServerProcess):
    """``redis-server --bind 127.0.0.1 --port <free> --save '' --appendonly no``."""

    log_name = "redis.log"
    start_timeout = 30.0
    stop_timeout = 10.0

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        assert REDIS_SERVER is not None
        return [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir)]

    def ready(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def keys(self) -> list[bytes]:
        return list(redis.Redis(port=self.port).keys("*"))
