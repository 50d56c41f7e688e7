"""Speech and images in the UI and the gradio_client API, over the process's MediaServices.

Endpoints (h2oGPT's names where h2oGPT has them):

- ``/transcribe_audio_api(audio, h2ogpt_key)``: an audio file (gradio_client:
  ``handle_file(path)``) -> its transcript;
- ``/speak_text_api(params)``: a dict (JSON or ``str(dict)``) with ``text`` (or h2oGPT's
  ``prompt``), ``voice`` (or ``speaker``/``chatbot_role``), ``speed`` (or ``tts_speed``),
  ``response_format`` (default wav) and ``h2ogpt_key`` -> base64 text of the audio file;
- ``/generate_image_api(params)``: ``prompt``, ``n``, ``size``, ``model``, ``seed``,
  ``num_inference_steps`` -> a list of base64 PNG images.

In the UI: a microphone (or upload) that transcribes into the message box, a "Speak"
button that reads the last answer aloud, and an "Image" button that draws the message
and shows the image in the chat.
"""

from __future__ import annotations

import base64
import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from gradio_ui.chat import Turn, render
from gradio_ui.context import BadRequest, UIContext, gradio_errors, parse_param_dict
from src.images.service import ImageRequest

log = logging.getLogger(__name__)

WAV_HEADER = 44


def _audio_bytes(audio: str | None) -> tuple[bytes, str]:
    """An uploaded file's bytes and name."""
    path = Path(str(audio or ""))
    if not audio or not path.is_file():
        raise BadRequest("no audio file given")
    return path.read_bytes(), path.name


class MediaEndpoints:
    """The speech and image handlers of the UI and the API, bound to the services."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        self.image_dir = Path(tempfile.mkdtemp(prefix="h2ogpt-images-"))

    # --- gradio_client API ------------------------------------------------------------------
    def transcribe_audio_api(self, audio: str, h2ogpt_key: str = "") -> str:
        """The transcript of an audio file (wav, mp3, m4a, ogg/opus, webm, flac)."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            data, name = _audio_bytes(audio)
            if len(data) > self.ctx.settings.max_audio_bytes:
                raise BadRequest(f"the audio file is larger than {self.ctx.settings.max_audio_bytes} "
                                 "bytes (--max_audio_bytes)")
            return str(self.ctx.media.stt.transcribe(data, name)["text"])

    def speak_text_api(self, params: str) -> str:
        """Base64 text of the speech of ``text`` (a wav file unless ``response_format`` says)."""
        with gradio_errors():
            values = parse_param_dict(params)
            self.ctx.access.check_key(values.pop("h2ogpt_key", None))
            text = str(values.get("text") or values.get("prompt") or "")
            voice = values.get("voice") or values.get("speaker") or values.get("chatbot_role")
            speed = float(values.get("speed") or values.get("tts_speed") or 1.0)
            fmt = str(values.get("response_format") or "wav")
            audio = b"".join(self.ctx.media.tts.synthesize(text, voice, speed, fmt))
            return base64.b64encode(audio).decode()

    def generate_image_api(self, params: str) -> list[str]:
        """Base64 PNG images drawn by a local diffusers model (--visible_image_models)."""
        with gradio_errors():
            values = parse_param_dict(params)
            self.ctx.access.check_key(values.pop("h2ogpt_key", None))
            return [base64.b64encode(png).decode() for png in self._images(values)]

    def _images(self, values: dict[str, Any]) -> list[bytes]:
        result = self.ctx.media.images.generate(ImageRequest(
            prompt=str(values.get("prompt") or ""), n=int(values.get("n") or 1), size=values.get("size"),
            model=values.get("model"), seed=values.get("seed"), steps=values.get("num_inference_steps"),
            guidance_scale=values.get("guidance_scale"),
        ))
        return list(result["images"])

    # --- UI events ----------------------------------------------------------------------------
    def transcribe_into(self, audio: str | None, message: str, h2ogpt_key: str) -> tuple[str, None]:
        """Append the recording's transcript to the message box, and clear the recording."""
        if not audio:
            return message, None
        text = self.transcribe_audio_api(audio, h2ogpt_key)
        return (f"{message.rstrip()} {text}".strip() if message else text), None

    def speak_last(self, turns: list[Turn], voice: str, h2ogpt_key: str) -> tuple[int, np.ndarray]:
        """The last answer read aloud, for an autoplaying Audio component."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            answer = next((t.answer for t in reversed(turns) if t.answer), "")
            if not answer:
                raise BadRequest("there is no answer to speak yet")
            tts = self.ctx.media.tts
            rate = tts.sample_rate(voice)
            wav = b"".join(tts.synthesize(answer, voice, 1.0, "wav"))
            return rate, np.frombuffer(wav[WAV_HEADER:], dtype="<i2")

    def draw(self, message: str, turns: list[Turn], h2ogpt_key: str
             ) -> tuple[str, list[Turn], list[dict[str, Any]]]:
        """Draw the message with the image model and show the image as the answer."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            prompt = (message or "").strip()
            if not prompt:
                raise BadRequest("write what to draw in the message box")
            paths = []
            for png in self._images({"prompt": prompt}):
                path = self.image_dir / f"{uuid.uuid4().hex}.png"
                path.write_bytes(png)
                paths.append(str(path))
            turns = [*turns, Turn(prompt, images=paths)]
            return "", turns, render(turns)


def register_api(endpoints: MediaEndpoints) -> None:
    """The named endpoints, in the current Blocks context."""
    gr.api(endpoints.speak_text_api, api_name="speak_text_api", concurrency_limit=4)
    gr.api(endpoints.generate_image_api, api_name="generate_image_api", concurrency_limit=2)
    with gr.Row(visible=False):
        audio_file = gr.File(label="audio", type="filepath")
        key = gr.Textbox(label="h2ogpt_key")
        transcript = gr.Textbox(label="transcript")
        button = gr.Button("transcribe_audio_api")
    button.click(endpoints.transcribe_audio_api, [audio_file, key], [transcript],
                 api_name="transcribe_audio_api", concurrency_limit=4)


def build_controls(endpoints: MediaEndpoints, prompt: gr.Textbox, turns: gr.State, chatbot: gr.Chatbot,
                   h2ogpt_key: gr.Textbox) -> None:
    """The microphone, "Speak" and "Image" controls in one compact row under the chat (only
    the services that are on; no row at all when none is)."""
    media = endpoints.ctx.media
    drawing = media.image_service is not None and bool(media.image_service.models())
    if media.stt_service is None and media.tts_service is None and not drawing:
        return
    with gr.Row(elem_id="media_row", equal_height=True):
        if media.stt_service is not None:
            mic = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Speak a message",
                           elem_id="mic", scale=3, min_width=160)
            for event in (mic.stop_recording, mic.upload):
                event(endpoints.transcribe_into, [mic, prompt, h2ogpt_key], [prompt, mic],
                      api_visibility="private")
        if media.tts_service is not None:
            voices = media.tts_service.voices()
            voice = gr.Dropdown(voices, value=voices[0], label="Voice", elem_id="voice", scale=1, min_width=100)
            speak = gr.Button("Speak", elem_id="speak", scale=0, min_width=70)
            speech = gr.Audio(label="Answer read aloud", autoplay=True, elem_id="speech", interactive=False,
                              scale=2, min_width=160)
            speak.click(endpoints.speak_last, [turns, voice, h2ogpt_key], [speech], api_visibility="private")
        if drawing:
            draw = gr.Button("Image", elem_id="draw_image", scale=0, min_width=70)
            draw.click(endpoints.draw, [prompt, turns, h2ogpt_key], [prompt, turns, chatbot],
                       api_visibility="private")
