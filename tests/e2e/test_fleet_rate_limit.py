"""Rate limits for a fleet (issue 22): two instances of the app share one real
redis-server through --rate_limit_storage, so a client gets --api_rate_limit requests in
all across them, not that many from each."""

from __future__ import annotations

import httpx
import pytest

from tests.redis_server import REDIS_SERVER, RedisRun
from tests.server import RemoteServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (.ci/run installs it)")

LIMIT = 4


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with RedisRun(tmp_path_factory.mktemp("redis")) as store:
        flags = (f"--api_rate_limit={LIMIT}/minute", f"--rate_limit_storage={store.url}")
        with RemoteServer(tmp_path_factory.mktemp("one"), *flags) as one, \
                RemoteServer(tmp_path_factory.mktemp("two"), *flags) as two:
            yield store, one, two


def test_two_instances_sharing_redis_allow_the_limit_in_all(fleet):
    store, one, two = fleet
    statuses = []
    for i in range(3 * LIMIT):  # alternately, as a load balancer would send them
        server = (one, two)[i % 2]
        statuses.append((i % 2, httpx.get(server.base_url + "/models", timeout=30).status_code))
    assert [s for _, s in statuses].count(200) == LIMIT, statuses  # not LIMIT per instance
    assert [s for _, s in statuses][:LIMIT] == [200] * LIMIT
    assert {i for i, s in statuses if s == 429} == {0, 1}  # both instances refuse once it is spent
    refused = httpx.get(one.base_url + "/models", timeout=30)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert store.keys(), "the counters are in redis"


def test_health_stays_exempt_and_answers_with_the_store_shared(fleet):
    _, one, two = fleet
    assert all(httpx.get(s.url + "/health", timeout=30).status_code == 200 for s in (one, two) for _ in range(3))
