"""The vision backend on a tiny LLaVA built from configs, and evaluate() routing images to it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from src.engine.image_inputs import image_part
from src.engine.registry import ModelRegistry
from src.engine.types import GenerationRequest, SamplingOptions
from src.errors import InvalidParamsError, UnsupportedFeatureError
from src.evaluate import Evaluator
from src.params import EvalParams
from tests.conftest import wait_idle
from tests.vision import IMAGE_TOKENS, make_tiny_vision_model, png_bytes, png_data_uri


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_tiny_vision_model(tmp_path_factory.mktemp("models") / "tiny-llava")


@pytest.fixture(scope="module")
def vision(folder, settings) -> Iterator[object]:
    from src.engine.vision_backend import load_vision_backend

    backend = load_vision_backend(str(folder), settings)
    yield backend
    backend.shutdown()


def test_torch_dtype_applies_to_the_vision_model_and_its_pixels(folder, settings):
    import torch

    from src.engine.vision_backend import load_vision_backend

    backend = load_vision_backend(str(folder), settings.model_copy(update={"torch_dtype": "bfloat16"}))
    try:
        assert backend.model.dtype == torch.bfloat16
        assert backend.inputs(ask(png_bytes()))["pixel_values"].dtype == torch.bfloat16
        events = run(backend, ask(png_bytes(), max_new_tokens=3, min_new_tokens=3))
        assert events[-1].completion_tokens == 3 and events[-1].finish_reason == "length"
    finally:
        backend.shutdown()


def ask(image: bytes | None, text: str = "What is in the picture?", **options) -> GenerationRequest:
    content = [image_part(image), {"type": "text", "text": text}] if image else text
    return GenerationRequest(messages=({"role": "user", "content": content},),
                             options=SamplingOptions(**{"max_new_tokens": 6, **options}))


def run(backend, request: GenerationRequest) -> list:
    return list(backend.submit(request))


def test_the_folder_loads_as_a_vision_backend_named_after_it(vision):
    assert vision.name == "tiny-llava"
    assert vision.capabilities.vision and not vision.capabilities.logprobs
    assert vision.context_window == 512 and vision.describe().capabilities.vision is True


def test_an_image_is_read_into_the_prompt_and_changes_the_answer(vision):
    with_image = run(vision, ask(png_bytes((255, 0, 0)), min_new_tokens=6))
    without = run(vision, ask(None, min_new_tokens=6))
    # the <image> placeholder became the vision tower's patch embeddings
    assert with_image[-1].prompt_tokens - without[-1].prompt_tokens == IMAGE_TOKENS
    red = "".join(e.delta for e in with_image)
    blue = "".join(e.delta for e in run(vision, ask(png_bytes((0, 0, 255)), min_new_tokens=6)))
    assert red != blue  # the pixels reach the language model


def test_tokens_stream_after_a_started_event_and_length_ends_the_answer(vision):
    events = run(vision, ask(png_bytes(), max_new_tokens=5, min_new_tokens=5))
    assert events[0].delta == "" and events[0].completion_tokens == 0
    assert [e.completion_tokens for e in events[1:-1]] == sorted(e.completion_tokens for e in events[1:-1])
    assert len([e for e in events if e.delta]) >= 2
    assert events[-1].finish_reason == "length" and events[-1].completion_tokens == 5


def test_a_stop_string_ends_the_answer_before_it(vision):
    full = "".join(e.delta for e in run(vision, ask(png_bytes(), max_new_tokens=8, min_new_tokens=8)))
    words = full.split()
    assert len(words) >= 3, full
    stop = words[2]
    events = run(vision, ask(png_bytes(), max_new_tokens=8, min_new_tokens=8, stop=(stop,)))
    text = "".join(e.delta for e in events)
    assert events[-1].finish_reason == "stop" and stop not in text
    assert full.startswith(text) and text == full[:full.index(stop)]


def test_a_fixed_seed_samples_the_same_answer(vision):
    request = ask(png_bytes(), temperature=1.0, seed=7, min_new_tokens=6)
    first = "".join(e.delta for e in run(vision, request))
    assert first == "".join(e.delta for e in run(vision, request))


def test_cancelling_stops_within_a_token_and_frees_the_backend(vision):
    cancel = threading.Event()
    steps: list[int] = []

    def on_step(module, args, output):  # the cancel comes while the 3rd token is computed
        steps.append(1)
        if len(steps) == 3:
            cancel.set()

    hook = vision.model.register_forward_hook(on_step)
    try:
        events = list(vision.submit(ask(png_bytes(), max_new_tokens=400, min_new_tokens=400), cancel))
    finally:
        hook.remove()
    assert events[-1].finish_reason == "cancelled"
    assert events[-1].completion_tokens <= 4 and len(steps) <= 4
    assert wait_idle(vision) == 0


def test_features_generate_lacks_are_refused_before_queueing(vision):
    with pytest.raises(UnsupportedFeatureError) as info:
        vision.submit(ask(png_bytes(), logprobs=2))
    assert info.value.param == "logprobs"
    with pytest.raises(UnsupportedFeatureError):
        vision.submit(ask(png_bytes(), logit_bias=((1, 5.0),)))
    assert vision.active_requests == 0


def test_bytes_that_are_not_an_image_are_a_parameter_error(vision):
    with pytest.raises(InvalidParamsError) as info:
        vision.submit(ask(b"not a picture"))
    assert info.value.param == "images"


# --- evaluate(): images go to the model the request names -----------------------------------
@pytest.fixture(scope="module")
def both(registry, vision) -> ModelRegistry:
    return ModelRegistry([registry.default, vision])


def answer(evaluator: Evaluator, **params) -> list:
    return list(evaluator.evaluate(EvalParams(max_new_tokens=4, temperature=0.0, **params)))


def test_evaluate_sends_a_data_uri_image_to_the_vision_model(settings, both, vision):
    chunks = answer(Evaluator(settings, both), instruction="What is it?", images=[png_data_uri()],
                    visible_models="tiny-llava")
    plain = answer(Evaluator(settings, both), instruction="What is it?", visible_models="tiny-llava")
    assert chunks[-1].finish_reason in ("stop", "length")
    assert chunks[-1].prompt_tokens - plain[-1].prompt_tokens == IMAGE_TOKENS


def test_a_text_only_model_refuses_images_naming_the_flag(settings, both):
    with pytest.raises(UnsupportedFeatureError) as info:
        answer(Evaluator(settings, both), instruction="What is it?", images=[png_data_uri()])
    assert "--visible_vision_models" in info.value.message and info.value.code == "unsupported_feature"


@pytest.fixture()
def image_host() -> Iterator[str]:
    """A loopback HTTP server that serves one PNG at /red.png."""
    body = png_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/red.png"
    server.shutdown()


def test_image_urls_are_fetched_only_when_the_flag_allows(settings, both, image_host):
    with pytest.raises(InvalidParamsError) as info:
        answer(Evaluator(settings, both), instruction="?", images=[image_host], visible_models="tiny-llava")
    assert "--allow_image_url_fetch" in info.value.message
    allowed = settings.model_copy(update={"allow_image_url_fetch": True})
    fetched = answer(Evaluator(allowed, both), instruction="?", images=[image_host], visible_models="tiny-llava")
    inline = answer(Evaluator(settings, both), instruction="?", images=[png_data_uri()],
                    visible_models="tiny-llava")
    assert fetched[-1].prompt_tokens == inline[-1].prompt_tokens
    assert fetched[-1].response == inline[-1].response  # the same picture, the same greedy answer
