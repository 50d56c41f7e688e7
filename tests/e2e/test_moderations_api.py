"""POST /v1/moderations end to end with the openai SDK: generate.py with the default
embedding-similarity heuristic, and with --moderation_model (a tiny classifier built here)."""

from __future__ import annotations

import httpx
import openai
import pytest

from src.contract import MODERATION_CATEGORIES
from src.moderation import ClassifierModerator
from tests.moderation_model import build_tiny_classifier
from tests.server import RemoteServer

VIOLENT = "He stabbed the man and beat him to death."
NEUTRAL = "The library opens at nine on weekdays."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RemoteServer(tmp_path_factory.mktemp("moderations"), "--openai_workers=1") as srv:
        yield srv


def test_the_heuristic_flags_a_violent_sentence_and_not_a_neutral_one(server):
    result = server.client().moderations.create(input=[VIOLENT, NEUTRAL])
    assert result.id.startswith("modr-") and result.model == "all-MiniLM-L6-v2"
    violent, neutral = result.results
    for item in (violent, neutral):
        assert set(item.category_scores.model_dump(by_alias=True)) == set(MODERATION_CATEGORIES)
        assert set(item.categories.model_dump(by_alias=True)) == set(MODERATION_CATEGORIES)
        assert item.category_applied_input_types.violence == ["text"]
    assert violent.category_scores.violence > neutral.category_scores.violence + 0.2
    assert violent.flagged and violent.categories.violence and not neutral.flagged


def test_a_string_and_a_multimodal_list_of_text_parts_are_one_input_each(server):
    client = server.client()
    one = client.moderations.create(input=VIOLENT, model="omni-moderation-latest")
    parts = client.moderations.create(input=[{"type": "text", "text": VIOLENT}])
    assert len(one.results) == len(parts.results) == 1
    assert parts.results[0].category_scores.violence == pytest.approx(one.results[0].category_scores.violence)


@pytest.mark.parametrize("body, param", [
    ({"input": []}, "input"),
    ({"input": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}, "input"),
    ({"input": 5}, "input"),
    ({}, "input"),
])
def test_bad_input_is_a_400_in_the_openai_envelope(server, body, param):
    response = httpx.post(server.base_url + "/moderations", json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and param in (error["param"] or "") + error["message"]
    with pytest.raises(openai.BadRequestError):
        server.client().moderations.create(**body) if body else server.client().moderations.create(input=[])


def test_a_moderation_model_scores_through_the_api(tmp_path_factory):
    folder = build_tiny_classifier(tmp_path_factory.mktemp("classifier") / "tiny-moderation")
    expected = ClassifierModerator(str(folder)).score([VIOLENT])[0].scores
    with RemoteServer(tmp_path_factory.mktemp("moderations-classifier"), "--openai_workers=1",
                      f"--moderation_model={folder}") as srv:
        result = srv.client().moderations.create(input=VIOLENT)
    assert result.model == "tiny-moderation"
    scores = result.results[0].category_scores.model_dump(by_alias=True)
    assert scores == pytest.approx(expected) and scores["violence"] > 0 and scores["sexual"] == 0
