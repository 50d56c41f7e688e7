"""The model endpoints' worker side and the registry's swap, without a model: textgen's
args mapped or refused by name, the admin key's rules, and a drain that waits for the
requests holding the old model."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from openai_server.app import create_app
from openai_server.errors import InvalidRequestError
from openai_server.serving_models import load_args
from src.contract import LoadArgs, LoadModelRequest, ModelNames, ModelState
from src.engine.registry import ModelRegistry
from src.engine.swap import load_plan
from src.errors import InvalidParamsError, NoModelLoadedError
from src.settings import build_settings
from src.settings_checks import SettingsError
from src.settings_model import DEFAULT_BASE_MODEL
from tests.unit.fake_engine import MODEL, FakeEngine


class SwappingEngine(FakeEngine):
    """The fake engine with the model methods: it records the loads it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[LoadModelRequest] = []
        self.state = ModelState(model_name=MODEL, loader="llama.cpp")

    async def model_state(self) -> ModelState:
        return self.state

    async def loadable_models(self) -> ModelNames:
        return ModelNames(model_names=[MODEL, "other.gguf"])

    async def load_model(self, request: LoadModelRequest) -> ModelState:
        self.loads.append(request)
        self.state = ModelState(model_name=request.name, loader="llama.cpp")
        return self.state

    async def unload_model(self) -> ModelState:
        self.state = ModelState(model_name="")
        return self.state


def test_textgen_args_map_to_the_contract():
    args = load_args({"ctx_size": 4096, "n_gpu_layers": 12, "threads": 2, "batch_size": 256,
                      "loader": "llama.cpp", "load_in_8bit": False})
    assert (args.context, args.gpu_layers, args.threads, args.batch_size, args.backend, args.load_8bit) == \
        (4096, 12, 2, 256, "llamacpp", False)
    assert load_args({"loader": "Transformers", "cpu": True}).backend == "transformers"
    assert load_args({"cpu": True, "gpu_layers": 9}).gpu_layers == 0
    seed = load_args({"ctx_size": 32768, "flash_attn": True, "cache_type": "q8_0"})  # textgen's doc example
    assert (seed.context, seed.flash_attn, seed.cache_type) == (32768, True, "q8_0")


def test_the_llama_cpp_args_reach_llamacpp_dict_and_are_a_400_on_transformers():
    args = LoadArgs(flash_attn=True, cache_type="q8_0")
    entry, _ = load_plan(DEFAULT_BASE_MODEL, args, build_settings({"llm_backend": "llamacpp"}))
    assert entry["llamacpp_dict"]["flash_attn"] is True and entry["llamacpp_dict"]["cache_type"] == "q8_0"
    with pytest.raises(InvalidParamsError) as refused:
        load_plan(DEFAULT_BASE_MODEL, args, build_settings({"llm_backend": "transformers"}))
    assert "flash_attn" in refused.value.message and "cache_type" in refused.value.message
    assert "llama.cpp" in refused.value.message


@pytest.mark.parametrize("args, named", [
    ({"ctx_size": 1024, "rope_freq_base": 2}, ["rope_freq_base"]),
    ({"cache_type": "q3_k"}, ["args.cache_type", "'q3_k'", "q8_0"]),
    ({"flash_attn": False, "cache_type": "q4_0"}, ["args.cache_type", "flash attention"]),
    ({"flash_attn": "yes please"}, ["args.flash_attn"]),
    ({"ctx_size": 4}, ["args.ctx_size"]),
    ({"loader": "ExLlamav2"}, ["args.loader", "ExLlamav2"]),
])
def test_unknown_or_wrong_args_are_a_400_naming_them(args, named):
    with pytest.raises(InvalidRequestError) as refused:
        load_args(args)
    assert all(n in refused.value.message for n in named)


def test_with_keys_off_the_model_endpoints_are_open():
    engine = SwappingEngine()
    api = TestClient(create_app(build_settings({}), engine))
    assert api.get("/v1/internal/model/list").json() == {"model_names": [MODEL, "other.gguf"]}
    assert api.post("/v1/internal/model/load", json={"model_name": "other.gguf", "args": {"ctx_size": 2048}}).json() == "OK"
    assert engine.loads[0].name == "other.gguf" and engine.loads[0].args.context == 2048
    assert api.get("/v1/internal/model/info").json() == {"model_name": "other.gguf", "lora_names": [],
                                                         "loader": "llama.cpp"}
    assert api.post("/v1/internal/model/unload").json() == "OK"
    assert api.get("/v1/internal/model/info").json()["model_name"] == "None"
    refused = api.post("/v1/internal/model/load", json={"model_name": "x", "args": {"nope": 1}})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "args"


def test_with_keys_on_and_no_admin_key_the_model_endpoints_say_which_flag():
    settings = build_settings({"enforce_h2ogpt_api_key": True, "h2ogpt_api_keys": ["k1"]})
    api = TestClient(create_app(settings, SwappingEngine()))
    refused = api.get("/v1/internal/model/list", headers={"Authorization": "Bearer k1"})
    assert refused.status_code == 403 and "--admin_api_key" in refused.json()["error"]["message"]
    assert api.get("/v1/internal/model/info", headers={"Authorization": "Bearer k1"}).status_code == 200


def test_the_admin_key_is_an_api_key_too():
    settings = build_settings({"enforce_h2ogpt_api_key": True, "h2ogpt_api_keys": ["k1"], "admin_api_key": "adm"})
    api = TestClient(create_app(settings, SwappingEngine()))
    assert api.get("/v1/internal/model/list", headers={"x-api-key": "adm"}).status_code == 200
    assert api.get("/v1/models", headers={"x-api-key": "adm"}).status_code == 200
    assert api.get("/v1/internal/model/list", headers={"x-api-key": "wrong"}).status_code == 401


def test_an_admin_key_without_keys_enforced_is_refused_at_start():
    with pytest.raises(SettingsError) as refused:
        build_settings({"admin_api_key": "adm"})
    assert refused.value.flag == "--admin_api_key" and "--enforce_h2ogpt_api_key" in refused.value.message


class _Backend:
    """The little of a Backend that the registry's swap reads (tests only)."""

    active_requests = 0

    def __init__(self, name: str) -> None:
        self.name = name
        self.stopped = threading.Event()

    def shutdown(self) -> None:
        self.stopped.set()


def test_a_swapped_out_model_is_shut_down_only_once_its_requests_let_go():
    old, new = _Backend("old"), _Backend("new")
    registry = ModelRegistry([old])  # type: ignore[list-item]
    with registry.lease() as held:
        assert held is old
        assert registry.replace(new) is old  # type: ignore[arg-type]
        assert registry.get() is new and registry.names == ["new"]
        drain = threading.Thread(target=registry.drain, args=(old, 60.0))
        drain.start()
        assert not old.stopped.wait(0.3)  # still held by the request in flight
    drain.join(10)
    assert old.stopped.is_set() and not new.stopped.is_set()
    registry.replace(None)
    with pytest.raises(NoModelLoadedError):
        registry.get()


def test_requests_wait_while_a_model_loads():
    old, new = _Backend("old"), _Backend("new")
    registry = ModelRegistry([old])  # type: ignore[list-item]
    registry.begin_swap()
    got: list[object] = []
    asker = threading.Thread(target=lambda: got.append(registry.get()))
    asker.start()
    assert not got and asker.is_alive()
    asker.join(0.3)
    assert not got  # waiting for the load, not answered with the old model
    registry.replace(new)  # type: ignore[arg-type]
    registry.end_swap()
    asker.join(10)
    assert got == [new]


def test_a_model_lock_of_several_models_refuses_load_and_unload():
    from src.engine.swap import ModelSwapper
    from src.errors import UnsupportedFeatureError

    settings = build_settings({"model_lock": [{"inference_server": "http://127.0.0.1:9/v1", "base_model": "a"},
                                              {"inference_server": "http://127.0.0.1:9/v1", "base_model": "b"}]})
    swapper = ModelSwapper(ModelRegistry([_Backend("a"), _Backend("b")]), settings)  # type: ignore[list-item]
    for attempt in (lambda: swapper.load(LoadModelRequest(name="a")), swapper.unload):
        with pytest.raises(UnsupportedFeatureError) as refused:
            attempt()
        assert "--model_lock" in refused.value.message
    assert swapper.registry.names == ["a", "b"]


def test_llamacpp_dict_takes_only_llama_cpp_cache_types():
    assert build_settings({"llamacpp_dict": {"cache_type": "q8_0", "flash_attn": True}}).llamacpp_dict["cache_type"] == "q8_0"
    with pytest.raises(SettingsError) as refused:
        build_settings({"llamacpp_dict": {"cache_type": "q3_k"}})
    assert "'q3_k'" in str(refused.value) and "--llamacpp_dict" in str(refused.value)
