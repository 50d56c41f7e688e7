"""gradio_ui's pure parts: chat turns and rendering, parameter parsing, API keys."""

from __future__ import annotations

import json
import os
import time

import pytest

from gradio_ui.access import Access, AccessDenied
from gradio_ui.app import add_turn, regenerate, undo
from gradio_ui.chat import ChatOptions, Turn, conversation, render, render_sources
from gradio_ui.context import BadRequest, parse_param_dict
from src.apikeys import ApiKeys
from src.settings import build_settings


def test_turns_render_with_sources_after_their_answer():
    turns = [Turn("hi", "hello"), Turn("doc?", "yes", [{"source": "/d/a.pdf", "page": 2, "score": 0.5,
                                                           "content": "<b>x</b>"}])]
    messages = render(turns)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "assistant"]
    assert messages[-1]["metadata"]["title"] == "Sources (1)"
    html = messages[-1]["content"]
    assert "a.pdf" in html and "page 2" in html and "score 0.500" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<details" in html
    assert conversation(turns) == [["hi", "hello"]]


def test_pending_turn_has_no_empty_answer_bubble():
    assert render([Turn("q")], pending=True) == [{"role": "user", "content": "q"}]


def test_add_regenerate_undo():
    prompt, _, turns, _ = add_turn("  ", None, [])
    assert turns == [] and prompt == ""
    _, _, turns, _ = add_turn("q1", None, [Turn("q0", "a0")])
    assert [t.question for t in turns] == ["q0", "q1"]
    turns[-1].answer = "a1"
    turns, _ = regenerate(turns)
    assert turns[-1].answer == "" and turns[0].answer == "a0"
    prompt, turns, _ = undo(turns)
    assert prompt == "q1" and [t.question for t in turns] == ["q0"]


def test_an_attached_image_is_shown_kept_by_regenerate_and_sent_as_a_data_uri(tmp_path):
    picture = tmp_path / "cat.png"
    picture.write_bytes(b"\x89PNG fake")
    prompt, image, turns, messages = add_turn("", str(picture), [])
    assert prompt == "" and image is None and turns[0].attachments == [str(picture)]
    assert messages == [{"role": "user", "content": {"path": str(picture), "mime_type": "image/png"}}]
    _, _, turns, _ = add_turn("what is it?", None, turns)
    turns, _ = regenerate(turns[:1])
    assert turns[0].attachments == [str(picture)]
    followup = [Turn("", "a cat", attachments=[str(picture)]), Turn("its colour?")]
    uri = "data:image/png;base64,iVBORyBmYWtl"
    vision = ChatOptions("LLM", "Query", 3, 0.1, 0.75, 40, 64, 1.07, "", model="tiny-llava", vision=True)
    params = vision.params(followup)
    assert params.images == [uri] and params.visible_models == "tiny-llava"
    text_only = ChatOptions("LLM", "Query", 3, 0.1, 0.75, 40, 64, 1.07, "")
    assert text_only.params(followup).images == [] and text_only.params(followup).visible_models is None


def test_sources_tolerate_metadata_and_missing_fields():
    html = render_sources([{"metadata": {"source": "notes.txt"}, "page_content": "t"}, {}])
    assert "notes.txt" in html and "2. document" in html


def test_chat_options_validate_through_evalparams():
    options = ChatOptions("LLM", "Query", 3, 0.1, 0.75, 40, 64, 1.07, "")
    params = options.params([Turn("a", "b"), Turn("c")])
    assert params.instruction == "c" and params.chat_conversation == [["a", "b"]]
    with pytest.raises(ValueError):
        ChatOptions("LLM", "Dance", 3, 0.1, 0.75, 40, 64, 1.07, "").params([Turn("c")])


@pytest.mark.parametrize(
    "payload",
    ["{'instruction': 'x', 'stream_output': True}", '{"instruction": "x", "stream_output": true}',
     {"instruction": "x", "stream_output": True}],
)
def test_param_dict_forms(payload):
    assert parse_param_dict(payload) == {"instruction": "x", "stream_output": True}


@pytest.mark.parametrize("payload", ["", "[1]", "{oops", "__import__('os')"])
def test_param_dict_rejects(payload):
    with pytest.raises(BadRequest):
        parse_param_dict(payload)


def test_api_keys_list_and_file(tmp_path):
    assert ApiKeys(["a", "b"]).check("b") and not ApiKeys(["a"]).check("") and not ApiKeys(["a"]).check("c")
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(["k1"]))
    keys = ApiKeys(str(path), reload_seconds=0)
    assert keys.check("k1") and not keys.check("k2")
    path.write_text(json.dumps(["k2"]))
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert keys.check("k2") and not keys.check("k1")
    path.write_text("{not json")
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert keys.check("k2"), "a broken file keeps the previous keys"


def test_access_enforces_keys_only_when_asked():
    open_access = Access(build_settings({}))
    open_access.check_key(None)
    assert not open_access.login_required
    strict = Access(build_settings({"enforce_h2ogpt_ui_key": True, "h2ogpt_api_keys": ["s"],
                                     "auth": [("al", "pw")]}))
    strict.check_key("s")
    for bad in (None, "", "x"):
        with pytest.raises(AccessDenied):
            strict.check_key(bad)
    assert strict.login_required and strict.login("al", "pw") and not strict.login("al", "no")


def test_each_finished_answer_names_its_model_when_several_are_served():
    turns = [Turn("q1", "a1", model="model-a"), Turn("q2", "a2", model="model-<b>")]
    named = [m["content"] for m in render(turns, name_models=True) if m["role"] == "assistant"]
    assert named == ["a1\n\n<span class='h2ogpt-model'>model-a</span>",
                     "a2\n\n<span class='h2ogpt-model'>model-&lt;b&gt;</span>"]
    streaming = render(turns, pending=True, name_models=True)
    assert streaming[-1]["content"] == "a2"  # not while the answer is still coming
    assert [m["content"] for m in render(turns) if m["role"] == "assistant"] == ["a1", "a2"]  # one model


def test_a_source_opens_in_its_document_at_its_page_with_the_chunk_marked():
    from gradio_ui.source_view import document_html

    chunks = [{"content": "Intro <b>text</b>.", "page": 1}, {"content": "The code is PURPLE-42.", "page": 2},
              {"content": "More on page two.", "page": 2}]
    page = document_html("report.pdf", chunks, "The code is PURPLE-42.", 2)
    assert page.count("<mark") == 1 and "<mark id='cited_chunk'>The code is PURPLE-42.</mark>" in page
    assert page.index("page 2") < page.index("<mark") and page.count("h2ogpt-page") == 2
    assert "&lt;b&gt;" in page  # document text is escaped
    fallback = document_html("report.pdf", chunks, "text that changed since", 2)
    assert "<mark id='cited_chunk'>The code is PURPLE-42.</mark>" in fallback  # first chunk of its page
