"""The API's middleware with a scripted engine: metrics reports, rate limits, draining."""

from __future__ import annotations

from fastapi.testclient import TestClient

from openai_server.app import create_app
from src.contract import HttpObservation, MetricsText, RateHit, RateVerdict
from src.ipc.ops import RateLimits
from src.settings import build_settings
from tests.unit.fake_engine import FakeEngine

HELLO = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


class OpsEngine(FakeEngine):
    """The fake engine plus the engine-side operations calls (observe_http, rate_hit)."""

    def __init__(self) -> None:
        super().__init__()
        self.observed: list[tuple[str, int]] = []
        self.limits = RateLimits()

    async def observe_http(self, observation: HttpObservation) -> None:
        self.observed.append((observation.route, observation.status))

    async def metrics(self) -> MetricsText:
        return MetricsText(text=b"h2ogpt_up 1.0\n")

    async def rate_hit(self, hit: RateHit) -> RateVerdict:
        return self.limits.hit(hit.identity, hit.limit)


def test_every_response_is_reported_with_its_route_template_before_it_ends():
    engine = OpsEngine()
    api = TestClient(create_app(build_settings({}), engine))
    assert api.post("/v1/chat/completions", json=HELLO).status_code == 200
    assert engine.observed == [("/v1/chat/completions", 200)]
    api.get("/v1/models/no-such-model")
    api.get("/nowhere")
    api.post("/v1/chat/completions", json={})
    assert engine.observed[1:] == [("/v1/models/{model:path}", 404), ("unmatched", 404),
                                   ("/v1/chat/completions", 400)]


def test_rate_limit_per_client_address_with_retry_after_and_exempt_paths():
    engine = OpsEngine()
    api = TestClient(create_app(build_settings({"api_rate_limit": "2/minute"}), engine))
    assert [api.get("/v1/models").status_code for _ in range(3)] == [200, 200, 429]
    refused = api.get("/v1/models")
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert all(api.get("/health").status_code == 200 for _ in range(5))


def test_a_draining_worker_refuses_new_requests_with_a_503_envelope():
    engine = OpsEngine()
    app = create_app(build_settings({}), engine)
    api = TestClient(app)
    app.state.drain.draining = True
    response = api.post("/v1/chat/completions", json=HELLO)
    assert response.status_code == 503 and response.headers["connection"] == "close"
    assert response.json()["error"]["code"] == "shutting_down"
    assert engine.calls == []  # nothing reached the engine


def test_metrics_are_open_unless_a_key_is_required():
    open_api = TestClient(create_app(build_settings({}), OpsEngine()))
    assert open_api.get("/metrics").text == "h2ogpt_up 1.0\n"
    flags = {"enforce_h2ogpt_api_key": True, "h2ogpt_api_keys": ["k"], "metrics_api_key_required": True}
    closed = TestClient(create_app(build_settings(flags), OpsEngine()))
    assert closed.get("/metrics").status_code == 401
    assert closed.get("/metrics", headers={"Authorization": "Bearer k"}).status_code == 200
    assert closed.get("/health").status_code == 200
