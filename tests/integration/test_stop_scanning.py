"""A backend that cuts at stop strings itself (``scans_stop``, the llama.cpp backend's way:
llama-server's OpenAI stream does not say which stop string matched) names the match on
its final event; a remote stream read as it is names none. Against a real loopback server
(tests/recording_server.py) that streams a scripted answer word by word."""

from __future__ import annotations

from src.engine.remote_backend import RemoteBackend
from src.engine.remote_spec import RemoteSpec
from src.engine.types import GenerationRequest, SamplingOptions
from tests.recording_server import MODEL, RecordingServer, Reply


class ScanningBackend(RemoteBackend):
    scans_stop = True


def answer(backend: RemoteBackend, stop: tuple[str, ...]) -> tuple[str, object]:
    request = GenerationRequest(messages=({"role": "user", "content": "Hi"},),
                                options=SamplingOptions(stop=stop))
    events = list(backend.submit(request))
    return "".join(e.delta for e in events), events[-1]


def test_the_scanning_backend_cuts_and_names_the_stop_string():
    with RecordingServer() as remote:
        spec = RemoteSpec("openai_chat", remote.base_url)
        scanning = ScanningBackend(spec, remote_model=MODEL)
        plain = RemoteBackend(spec, remote_model=MODEL)
        try:
            remote.script += [Reply(text="the quick brown fox jumps"), Reply(text="the quick brown fox"),
                              Reply(text="the quick brown fox")]
            text, final = answer(scanning, ("zzz", "own fo"))
            assert text == "the quick br" and final.finish_reason == "stop" and final.stop_sequence == "own fo"
            text, final = answer(scanning, ("zzz",))  # no match: the held-back text comes out
            assert text == "the quick brown fox " and final.stop_sequence is None
            _, final = answer(plain, ("brown",))  # the remote cut nothing and named nothing
            assert final.finish_reason == "stop" and final.stop_sequence is None
        finally:
            scanning.shutdown()
            plain.shutdown()
