"""EvalParams: defaults from Settings, validation, and how the prompt's messages are built."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from src.conversation import compose
from src.engine.types import Capabilities
from src.evaluate import output_constraint
from src.params import EvalParams
from src.settings import build_settings


def build_messages(params: EvalParams) -> list[dict]:
    """h2oGPT's own conversation (no client messages) as a local backend receives it."""
    return compose(params, None, Capabilities())


def test_none_fields_take_the_settings_defaults():
    settings = build_settings({"temperature": 0.4, "max_new_tokens": 77})
    params = EvalParams(instruction="hi", top_k=5).with_defaults(settings)
    assert params.temperature == 0.4 and params.max_new_tokens == 77 and params.top_k == 5
    assert params.langchain_mode == "LLM"


@pytest.mark.parametrize(
    "field, value",
    [("temperature", 5), ("top_p", 0), ("max_new_tokens", 0), ("seed", -1), ("langchain_action", "Dance")],
)
def test_out_of_range_values_are_rejected(field, value):
    with pytest.raises(ValidationError):
        EvalParams(**{field: value})


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError):
        EvalParams(instructions="typo")


def test_stop_accepts_a_string_or_a_list():
    assert EvalParams(stop="END").stop == ["END"]
    assert EvalParams(stop=["a", ""]).stop == ["a"]
    assert EvalParams(stop=None).stop == []


def test_messages_from_system_history_and_user():
    params = EvalParams(
        instruction="And now?",
        system_prompt="Be brief.",
        chat_conversation=[["Hi", "Hello!"], {"role": "user", "content": "Q2"}],
    )
    assert build_messages(params) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Q2"},
        {"role": "user", "content": "And now?"},
    ]


def test_nochat_fields_context_and_input():
    params = EvalParams(instruction_nochat="Translate", iinput_nochat="bonjour", context="French:")
    assert build_messages(params)[-1]["content"] == "French:\nTranslate\nbonjour"


def test_text_context_list_goes_into_the_user_message():
    params = EvalParams(instruction="Who won?", text_context_list=["Team A won 3-1.", "It rained."])
    content = build_messages(params)[-1]["content"]
    assert "Team A won 3-1." in content and "It rained." in content and content.endswith("Who won?")


def test_json_modes_and_guided_fields_become_one_constraint():
    assert output_constraint(EvalParams()) is None
    assert output_constraint(EvalParams(response_format="json_object")).kind == "json_object"
    assert output_constraint(EvalParams(response_format="json_code")).kind == "json_object"
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    both = output_constraint(EvalParams(response_format="json_object", guided_json=schema))
    assert both.kind == "json_schema" and both.value == schema
    assert output_constraint(EvalParams(guided_regex="a+")).kind == "regex"
    assert output_constraint(EvalParams(guided_choice=["x", "y"])).value == ("x", "y")
    assert output_constraint(EvalParams(guided_grammar='start: "a"')).kind == "grammar"


def test_at_most_one_guided_field():
    with pytest.raises(ValidationError, match="at most one"):
        EvalParams(guided_regex="a", guided_choice=["a"])


@pytest.mark.parametrize("turn", [{"content": "no role"}, {"role": "narrator", "content": "x"}, ["one"],
                                  ["a", "b", "c"], "text"])
def test_a_conversation_turn_that_is_neither_a_pair_nor_a_message_is_refused(turn):
    """A turn evaluate() cannot read is a 400 naming chat_conversation, not a KeyError in the engine."""
    with pytest.raises(ValidationError) as refused:
        EvalParams(chat_conversation=[["hi", "hello"], turn])
    assert refused.value.errors()[0]["loc"] == ("chat_conversation",)


def test_a_template_that_takes_one_system_message_gets_them_merged():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from src.engine.prompting import render_prompt

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' and not loop.first %}"
        "{{ raise_exception('System message must be first') }}{% endif %}"
        "[{{ m['role'] }}]{{ m['content'] }}{% endfor %}")
    messages = [{"role": "system", "content": "One."}, {"role": "user", "content": "Hi"},
                {"role": "system", "content": "Two."}, {"role": "user", "content": "Q"}]
    rendered = []
    tok.encode = lambda text, add_special_tokens=False: rendered.append(text) or []
    render_prompt(tok, messages)
    assert rendered == ["[system]One.\nTwo.[user]Hi[user]Q"]


def test_text_parts_alone_reach_a_local_template_as_one_string():
    """A chat template concatenates content: a turn of text parts only is joined for it,
    while a remote engine gets the parts as sent."""
    from src.contract import Message, TextPart

    params = EvalParams(instruction="b").with_defaults(build_settings({}))
    sent = [Message(role="user", content=[TextPart(text="a"), TextPart(text="b")])]
    assert compose(params, sent, Capabilities()) == [{"role": "user", "content": "a\nb"}]
    remote = compose(params, sent, Capabilities(passthrough=True))
    assert remote == [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
