"""Property-based fuzzing of the whole API from its /openapi.json (schemathesis).

Every operation gets ``EXAMPLES`` generated requests (valid and invalid, hypothesis with a
fixed seed, so a run is repeatable): no response may be a 5xx, and every error must be the
OpenAI envelope (Anthropic's on /v1/messages). The counts of the last run are in docs/operations.md.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode

from tests.server import RemoteServer

EXAMPLES = 25
SEED = 1234
STATS: Counter[str] = Counter()
#: Upper bounds put on generated values that only make the run longer (not checks skipped:
#: values below the bounds, negative and wrongly typed ones go through unchanged).
CAPS = {"n": 2, "max_tokens": 16, "max_output_tokens": 16, "max_completion_tokens": 16, "max_new_tokens": 16, "max_time": 2}


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory):
    # Short answers whatever a request asks, so that fuzzing measures the API, not the model.
    with RemoteServer(tmp_path_factory.mktemp("fuzz"), "--openai_workers=2", "--max_time=2",
                      "--max_new_tokens=16", "--max_queue_time=0") as srv:
        yield srv


@pytest.fixture(scope="module")
def api_schema(fuzzed_server):
    return schemathesis.openapi.from_url(fuzzed_server.url + "/openapi.json")


def _feature_off(status: int, text: str) -> bool:
    """A 501 naming the flag that turns a feature on (images here: none is configured) is
    the documented "not here" answer, not a server error."""
    try:
        return status == 501 and json.loads(text)["error"]["code"].startswith("feature_off_")
    except (ValueError, TypeError, KeyError, AttributeError):
        return False


def _fuzz(operation, failures: list[str]) -> None:
    @seed(SEED)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
           | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def run(case):
        if isinstance(case.body, dict):  # bounded work per request, whatever it asks
            for name, cap in CAPS.items():
                if isinstance(case.body.get(name), int | float) and not isinstance(case.body[name], bool):
                    case.body[name] = min(case.body[name], cap)
        response = case.call(timeout=120)
        STATS["requests"] += 1
        STATS[f"{response.status_code // 100}xx"] += 1
        text = response.content.decode("utf-8", "replace")  # audio and images are bytes
        where = f"{case.method} {case.path}: {response.status_code} {text[:300]}"
        if response.status_code >= 500 and not _feature_off(response.status_code, text):
            failures.append(where)
        elif response.status_code >= 400:
            try:
                body = json.loads(text)
                if case.path.startswith("/v1/messages"):  # Anthropic's envelope on its paths
                    ok = body["type"] == "error" and set(body["error"]) == {"type", "message"}
                else:
                    ok = set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
            except (ValueError, TypeError, KeyError):
                ok = False
            if not ok:
                failures.append("not an envelope: " + where)

    run()


@pytest.mark.timeout(900)  # about 40 s on an idle 2-core machine; 4 min on a busy one
def test_no_server_errors_and_every_error_is_an_envelope(api_schema):
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        STATS["operations"] += 1
        _fuzz(operation, failures)
    print(f"\nschemathesis: {dict(STATS)}")
    assert STATS["operations"] >= 20 and STATS["requests"] >= 10 * STATS["operations"]
    assert not failures, "\n".join(failures[:20])
