"""Load on the OpenAI API: concurrent clients of short chats, optionally killing a worker.

    python bench/load.py [--clients=32] [--seconds=60] [--workers=2] [--kill_after=20]

Starts generate.py (the real tiny model, loopback only) with ``--workers`` API workers,
runs ``--clients`` clients (one keep-alive connection each, a short greedy chat per
request, in a bounded loop) for ``--seconds``, and prints requests/s, p50/p99 latency and
failures. With ``--kill_after`` it SIGKILLs one worker that many seconds in, and reports
which worker each failed request's connection belonged to and how soon the replacement
served. tests/e2e/test_load.py runs a short version of the same code in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUEST_TIMEOUT = 600.0  # queued behind 31 others on a busy machine is slow, not failed
CHAT = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, "temperature": 0}


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    failures: list[tuple[int | None, str]] = field(default_factory=list)  # (worker pid, error)
    probe_failures: list[str] = field(default_factory=list)  # a new connection's /health failed
    seconds: float = 0.0
    killed: int | None = None
    owners: dict[int, int | None] = field(default_factory=dict)  # client -> its worker now
    clients_per_worker: dict[int | None, int] = field(default_factory=dict)  # at the kill
    replacement_serving_after: float | None = None

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def worker_of_port(worker_pids: list[int], port: int) -> int | None:
    """The worker process holding the server side of the client connection from ``port``."""
    for pid in worker_pids:
        try:
            for conn in psutil.Process(pid).net_connections(kind="tcp"):
                if conn.raddr and conn.raddr.port == port:
                    return pid
        except psutil.Error:
            continue
    return None


def client_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


async def _connect(http: httpx.AsyncClient, workers: list[int]) -> int | None:
    """Open the client's connection with a /health probe; the worker that holds it."""
    response = await http.get("/health")
    response.raise_for_status()
    return await asyncio.to_thread(worker_of_port, workers, client_port(response))


async def _client(index: int, url: str, deadline: float, result: LoadResult,
                  workers: list[int]) -> None:
    """Chats in a loop on one keep-alive connection, opened anew (and its worker looked up)
    after a failure, so that each failure is put down to the worker it was sent to."""
    owner: int | None = None
    connected = False
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT) as http:
        while time.monotonic() < deadline:
            if not connected:
                try:
                    owner = result.owners[index] = await _connect(http, workers)
                    connected = True
                except Exception as exc:
                    result.probe_failures.append(repr(exc)[:200])
                    await asyncio.sleep(0.05)
                    continue
            start = time.monotonic()
            try:
                response = await http.post("/v1/chat/completions", json=CHAT)
                if response.status_code != 200:
                    raise RuntimeError(f"status {response.status_code}: {response.text[:200]}")
                if response.json()["choices"][0]["finish_reason"] not in ("stop", "length"):
                    raise RuntimeError(f"no answer: {response.text[:200]}")
            except Exception as exc:
                result.failures.append((owner, repr(exc)[:200]))
                connected = False
                owner = result.owners[index] = None
                continue
            result.latencies.append(time.monotonic() - start)


async def run_load(url: str, worker_pids: list[int], clients: int, seconds: float,
                   kill_after: float | None = None,
                   current_pids: object = None) -> LoadResult:
    """``clients`` clients for ``seconds``; with ``kill_after``, SIGKILL then the worker that
    serves the most clients, and time how soon a new worker (``current_pids()``) answers."""
    result = LoadResult()
    workers = list(worker_pids)
    start = time.monotonic()
    deadline = start + seconds
    tasks = [asyncio.create_task(_client(i, url, deadline, result, workers)) for i in range(clients)]
    if kill_after is not None:
        await asyncio.sleep(kill_after)
        owners = list(result.owners.values())
        victim = result.killed = max(workers, key=owners.count)
        result.clients_per_worker = {pid: owners.count(pid) for pid in {*workers, *owners}}
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        assert callable(current_pids)
        while time.monotonic() - killed_at < 30:
            fresh = [p for p in current_pids() if p not in worker_pids]
            if fresh and await _served_by(url, fresh[0], [*workers, *fresh]):
                result.replacement_serving_after = time.monotonic() - killed_at
                workers.append(fresh[0])
                break
            await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    result.seconds = time.monotonic() - start
    return result


async def _served_by(url: str, pid: int, workers: list[int]) -> bool:
    """Whether a fresh connection lands on worker ``pid`` and gets an answer (tries a few)."""
    for _ in range(20):
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            try:
                response = await http.get("/v1/models")
            except httpx.HTTPError:
                continue
            if response.status_code == 200 and await asyncio.to_thread(
                    worker_of_port, [pid], client_port(response)) == pid:
                return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill_after", type=float, default=None)
    args = parser.parse_args()

    from src.offline import apply_offline_environment

    apply_offline_environment(os.environ)
    from tests.server import RemoteServer

    with tempfile.TemporaryDirectory() as tmp, RemoteServer(
            Path(tmp), f"--openai_workers={args.workers}") as server:
        pids = server.worker_pids()
        result = asyncio.run(run_load(server.url, pids, args.clients, args.seconds, args.kill_after,
                                      server.worker_pids))
    print(f"clients={args.clients} seconds={result.seconds:.1f} workers={args.workers} "
          f"kill_after={args.kill_after}")
    print(f"requests={len(result.latencies)} failures={len(result.failures)} "
          f"connection probes failed={len(result.probe_failures)} "
          f"req/s={result.requests_per_second:.1f} p50={result.percentile(0.5) * 1000:.0f} ms "
          f"p99={result.percentile(0.99) * 1000:.0f} ms "
          f"mean={statistics.fmean(result.latencies) * 1000 if result.latencies else 0:.0f} ms")
    for pid, error in result.failures[:5]:
        print(f"  failed: worker {pid}: {error}")
    if result.killed is not None:
        others = [f for f in result.failures if f[0] != result.killed]
        print(f"clients per worker at the kill: {result.clients_per_worker}")
        print(f"killed worker {result.killed}: {len(result.failures) - len(others)} failures on its "
              f"connections, {len(others)} elsewhere; replacement serving after "
              f"{result.replacement_serving_after} s")
        for pid, error in others[:5]:
            print(f"  elsewhere: worker {pid}: {error}")


if __name__ == "__main__":
    main()
