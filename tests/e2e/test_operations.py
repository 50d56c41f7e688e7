"""Operations end to end: /metrics across 2 workers and the Gradio path, tokenizer endpoints,
CORS, WebSocket refusals, input limits, cancellation in vLLM's style, and load with a
worker SIGKILLed mid-run. One generate.py with 2 API workers and the UI."""

from __future__ import annotations

import ast
import asyncio
import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.load import client_port, run_load, worker_of_port
from tests.server import RemoteServer

HI = [{"role": "user", "content": "Say hi."}]
ORIGIN = "http://ok.example"
CHAT_ROUTE = "/v1/chat/completions"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RemoteServer(tmp_path_factory.mktemp("operations"), "--openai_workers=2",
                      f"--cors_origins=[{json.dumps(ORIGIN)}]", "--openai_max_messages=4",
                      gradio=True) as srv:
        yield srv


def metrics(server) -> dict[tuple[str, frozenset], float]:
    response = httpx.get(server.url + "/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def pinned_clients(server) -> dict[int, httpx.Client]:
    """One keep-alive client per API worker (found by the worker holding its connection)."""
    pids = server.worker_pids()
    clients: dict[int, httpx.Client] = {}
    for _ in range(100):
        client = httpx.Client(base_url=server.url, timeout=120)
        pid = worker_of_port(pids, client_port(client.get("/v1/models")))
        if pid in pids and pid not in clients:
            clients[pid] = client
        else:
            client.close()
        if len(clients) == len(pids):
            return clients
        time.sleep(0.02)
    pytest.fail(f"could not reach every worker: {sorted(clients)} of {pids}")


# --- metrics ------------------------------------------------------------------------------
def test_metrics_count_six_chats_over_two_workers_exactly_once(server):
    clients = pinned_clients(server)
    assert len(clients) == 2
    before = metrics(server)
    usages = []
    for client in clients.values():
        for _ in range(3):
            response = client.post(CHAT_ROUTE, json={"messages": HI, "max_tokens": 4, "temperature": 0})
            assert response.status_code == 200
            usages.append(response.json()["usage"])
    after = metrics(server)
    name = "h2ogpt_http_requests_total"
    assert value(after, name, route=CHAT_ROUTE, status="200") - value(before, name, route=CHAT_ROUTE, status="200") == 6
    assert total(after, "h2ogpt_requests_total") - total(before, "h2ogpt_requests_total") == 6
    assert (value(after, "h2ogpt_prompt_tokens_total") - value(before, "h2ogpt_prompt_tokens_total")
            == sum(u["prompt_tokens"] for u in usages))
    assert (value(after, "h2ogpt_generation_tokens_total") - value(before, "h2ogpt_generation_tokens_total")
            == sum(u["completion_tokens"] for u in usages))
    for histogram in ("h2ogpt_time_to_first_token_seconds_count", "h2ogpt_e2e_request_latency_seconds_count"):
        assert value(after, histogram) - value(before, histogram) == 6
    for client in clients.values():
        client.close()


def test_metrics_count_the_gradio_path_and_list_the_gauges(server):
    from gradio_client import Client

    before = metrics(server)
    client = Client(server.gradio_url, verbose=False, download_files=False)
    result = ast.literal_eval(client.predict(
        str({"instruction": "Say hi.", "max_new_tokens": 4, "temperature": 0}),
        api_name="/submit_nochat_api"))
    after = metrics(server)
    assert total(after, "h2ogpt_requests_total") - total(before, "h2ogpt_requests_total") == 1
    assert (value(after, "h2ogpt_generation_tokens_total") - value(before, "h2ogpt_generation_tokens_total")
            == result["completion_tokens"] > 0)
    assert value(after, "h2ogpt_http_requests_total", route=CHAT_ROUTE, status="200") == value(
        before, "h2ogpt_http_requests_total", route=CHAT_ROUTE, status="200")
    for gauge in ("h2ogpt_num_requests_running", "h2ogpt_num_requests_waiting",
                  "h2ogpt_kv_cache_used_tokens", "h2ogpt_kv_cache_capacity_tokens"):
        assert (gauge, frozenset()) in after


def test_metrics_count_documents_ingested_through_the_api(server):
    before = metrics(server)
    added = httpx.post(server.url + "/v1/collections/UserData/text", timeout=120,
                       json={"text": "The lighthouse keeper feeds the gulls at dawn.", "source": "gulls.txt"})
    assert added.status_code == 200 and added.json()["files"][0]["status"] == "added"
    after = metrics(server)
    name = "h2ogpt_documents_ingested_total"
    assert value(after, name, status="added") - value(before, name, status="added") == 1


# --- tokenizer ----------------------------------------------------------------------------
def test_tokenize_detokenize_round_trip_and_gradio_count_tokens_agree(server):
    from gradio_client import Client

    text = "Hello world, this is h2oGPT."
    plain = httpx.post(server.url + "/tokenize", json={"prompt": text, "add_special_tokens": False}).json()
    assert plain["count"] == len(plain["tokens"]) > 0 and plain["max_model_len"] >= 2048
    assert httpx.post(server.url + "/detokenize", json={"tokens": plain["tokens"]}).json() == {"prompt": text}
    strs = httpx.post(server.url + "/tokenize", json={"prompt": text, "return_token_strs": True}).json()
    assert len(strs["token_strs"]) == strs["count"] and "".join(strs["token_strs"]).endswith(text)
    count = Client(server.gradio_url, verbose=False, download_files=False).predict(
        text=text, h2ogpt_key="", api_name="/count_tokens")
    assert int(count) == plain["count"]


def test_tokenize_chat_messages_is_what_the_model_reads(server):
    chat = httpx.post(server.url + "/tokenize", json={"messages": HI}).json()
    answer = httpx.post(server.base_url + "/chat/completions",
                        json={"messages": HI, "max_tokens": 1, "temperature": 0}, timeout=120).json()
    assert chat["count"] == answer["usage"]["prompt_tokens"]
    text = httpx.post(server.url + "/detokenize", json={"tokens": chat["tokens"]}).json()["prompt"]
    assert "Say hi." in text and text.index("Say hi.") > 0  # the template wraps the message


@pytest.mark.parametrize("path, body, param", [
    ("/detokenize", {"tokens": [10**9]}, "tokens"),
    ("/tokenize", {"prompt": "x", "model": "no-such-model"}, "model"),
    ("/tokenize", {}, None),
])
def test_tokenizer_endpoints_refuse_bad_input_with_an_envelope(server, path, body, param):
    response = httpx.post(server.url + path, json=body)
    assert response.status_code in (400, 404)
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param:
        assert error["param"] == param


# --- CORS, WebSocket, limits --------------------------------------------------------------
def test_cors_preflight_and_actual_requests(server):
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    ok = httpx.options(server.base_url + "/chat/completions", headers={"Origin": ORIGIN, **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    refused = httpx.options(server.base_url + "/chat/completions",
                            headers={"Origin": "http://evil.example", **preflight})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "cors_refused"
    assert "access-control-allow-origin" not in refused.headers
    actual = httpx.get(server.base_url + "/models", headers={"Origin": ORIGIN})
    assert actual.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.get(server.base_url + "/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("path, status", [("/no/such/path", 404), ("/v1/models", 400)])
def test_websocket_upgrade_gets_an_envelope(server, path, status):
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    response = httpx.get(server.url + path, headers=headers)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    time.sleep(0.3)  # the worker's task for that connection ends after its answer
    assert "ASGI" not in server.log() and "handshake" not in server.log()  # a refusal, not a fault


def test_input_limits_are_400_envelopes(server):
    many = [{"role": "user", "content": "x"}] * 5  # --openai_max_messages=4
    response = httpx.post(server.base_url + "/chat/completions", json={"messages": many})
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_many_messages"
    response = httpx.post(server.base_url + "/chat/completions", json={"messages": HI, "n": 17})
    assert response.status_code == 400 and response.json()["error"]["param"] == "n"


# --- cancellation and faults --------------------------------------------------------------
def test_thirty_abandoned_streams_leave_the_engine_idle(server):
    """vLLM's test: 30 streams abandoned after 0.5 s; a new request then completes within
    15 s and the engine reports no running sequence."""
    model = server.model()

    async def abandon() -> None:
        client = server.async_client()

        async def one() -> None:
            stream = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Write a long story."}],
                max_tokens=400, stream=True)
            async for _ in stream:
                pass

        tasks = [asyncio.create_task(one()) for _ in range(30)]
        done, pending = await asyncio.wait(tasks, timeout=0.5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
        assert pending, "every stream finished within 0.5 s: nothing was abandoned"

    asyncio.run(abandon())
    start = time.monotonic()
    answer = server.client(timeout=15).chat.completions.create(
        model=model, messages=HI, max_tokens=4, temperature=0)
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert time.monotonic() - start < 15
    deadline = time.monotonic() + 10
    while server.health()["active_requests"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.health()["active_requests"] == 0
    assert value(metrics(server), "h2ogpt_num_requests_running") == 0


def test_load_with_a_worker_killed_fails_only_its_connections(server):
    """A short CI version of bench/load.py (docs/operations.md has the 32-client figures)."""
    pids = server.worker_pids()
    result = asyncio.run(run_load(server.url, pids, clients=8, seconds=12, kill_after=4,
                                  current_pids=server.worker_pids))
    assert result.latencies, result.failures
    elsewhere = [f for f in result.failures if f[0] != result.killed]
    assert not elsewhere, elsewhere
    assert not result.probe_failures, result.probe_failures
    assert result.replacement_serving_after is not None and result.replacement_serving_after < 5
    assert len(server.worker_pids()) == 2 and result.killed not in server.worker_pids()
