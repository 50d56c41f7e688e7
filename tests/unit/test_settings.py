"""Settings: defaults, validation messages, H2OGPT_ overrides, h2oGPT's string forms."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from src.settings import Settings, build_settings
from src.settings_checks import SettingsError
from tests.conftest import ROOT


def test_defaults_match_h2ogpt():
    s = build_settings({})
    assert s.openai_port == 5000 and s.server_port == 7860
    assert s.langchain_modes == ["UserData", "MyData", "LLM", "Disabled"]
    assert s.chunk_size == 512 and s.openai_workers == 1 and s.gradio and s.openai_server
    assert s.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.mark.parametrize(
    "flags, flag, words",
    [
        ({"openai_port": "abc"}, "--openai_port", "valid integer"),
        ({"temperature": -1}, "--temperature", "greater than or equal to 0"),
        ({"base_model": "/no/such/model"}, "--base_model", "does not exist"),
        ({"base_model": "./missing.gguf"}, "--base_model", "does not exist"),
        ({"nonsense": 1}, "--nonsense", "unknown flag"),
        ({"share": True}, "--share", "offline"),
        ({"auth_access": "maybe"}, "--auth_access", "open"),
        ({"langchain_mode": "Nope"}, "--langchain_mode", "not in --langchain_modes"),
        ({"min_new_tokens": 10, "max_new_tokens": 5}, "--min_new_tokens", "exceed"),
        ({"prompt_type": "llama2"}, "--prompt_type", "plain"),
        ({"inference_server": "vllm:host"}, "--inference_server", "not an inference server"),
        ({"model_lock": [{"prompt_type": "plain"}]}, "--model_lock", "needs base_model or inference_server"),
        ({"model_lock": [{"base_model": "x", "colour": 1}]}, "--model_lock", "unknown key"),
        ({"llamacpp_dict": {"n_thread": 2}}, "--llamacpp_dict", "unknown key"),
        ({"llm_backend": "llamacpp", "load_8bit": True}, "--load_8bit", "quantized already"),
        ({"api_rate_limit": "lots"}, "--api_rate_limit", "not a rate limit"),
        ({"metrics_api_key_required": True}, "--metrics_api_key_required", "--enforce_h2ogpt_api_key"),
        ({"ssl_keyfile": "key.pem"}, "--ssl_keyfile", "needs --ssl_certfile"),
        ({"ssl_certfile": "/no/such/cert.pem"}, "--ssl_certfile", "no such file"),
        ({"rate_limit_storage": "bogus://x"}, "--rate_limit_storage", "not a usable storage URI"),
    ],
)
def test_bad_values_name_the_flag(flags, flag, words):
    with pytest.raises(SettingsError) as info:
        build_settings(flags)
    assert info.value.flag == flag
    assert words in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["localhost:8000", "http://127.0.0.1", "ftp://h:1", "http://h:1/x"])
def test_chroma_server_must_be_an_http_url_with_a_port(value):
    with pytest.raises(SettingsError) as info:
        build_settings({"chroma_server": value})
    assert info.value.flag == "--chroma_server" and "http://HOST:PORT" in info.value.message
    assert build_settings({"chroma_server": "http://127.0.0.1:8000/"}).chroma_server == "http://127.0.0.1:8000"


def test_settings_are_frozen():
    s = build_settings({})
    with pytest.raises(ValidationError):
        s.temperature = 1.0  # type: ignore[misc]


def test_environment_overrides_and_command_line_wins():
    env = {"H2OGPT_TEMPERATURE": "0.5", "H2OGPT_OPENAI_PORT": "6001", "H2OGPT_gradio": "False"}
    s = build_settings({}, env)
    assert s.temperature == 0.5 and s.openai_port == 6001 and s.gradio is False
    assert build_settings({"temperature": 0.2}, env).temperature == 0.2


def test_environment_error_names_the_variable():
    with pytest.raises(SettingsError) as info:
        build_settings({}, {"H2OGPT_OPENAI_PORT": "abc"})
    assert info.value.flag == "H2OGPT_OPENAI_PORT"


def test_gradio_server_port_variable():
    assert build_settings({}, {"GRADIO_SERVER_PORT": "7999"}).server_port == 7999
    env = {"GRADIO_SERVER_PORT": "7999", "H2OGPT_SERVER_PORT": "7001"}
    assert build_settings({}, env).server_port == 7001
    assert build_settings({"server_port": 7002}, env).server_port == 7002


def test_h2ogpt_string_forms_for_lists_and_dicts():
    s = build_settings(
        {
            "langchain_modes": "['UserData','LLM']",
            "langchain_mode": "UserData",
            "langchain_mode_paths": "{'UserData': 'docs'}",
            "h2ogpt_api_keys": "['k1','k2']",
            "auth": "[('alice', 'pw')]",
        }
    )
    assert s.langchain_modes == ["UserData", "LLM"]
    assert s.langchain_mode_paths == {"UserData": "docs"}
    assert s.h2ogpt_api_keys == ["k1", "k2"]
    assert s.auth == [("alice", "pw")]
    assert build_settings({"h2ogpt_api_keys": "keys.json"}).h2ogpt_api_keys == "keys.json"
    env = {"H2OGPT_LANGCHAIN_MODES": "['LLM','MyData']"}
    assert build_settings({}, env).langchain_modes == ["LLM", "MyData"]


def test_every_flag_has_a_description():
    for name, info in Settings.model_fields.items():
        assert info.description, name


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "generate.py", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env=env,
    )


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--openai_port=abc"], "--openai_port"),
        (["--temperature=-1"], "--temperature"),
        (["--base_model=/does/not/exist"], "--base_model"),
        (["--no_such_flag=1"], "--no_such_flag"),
        (["positional"], "positional"),
    ],
)
def test_generate_py_rejects_bad_flags_in_one_line(args, flag):
    result = _run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert flag in lines[0] and "Traceback" not in result.stderr
    assert "loaded" not in result.stderr  # refused before any model loads


def test_help_lists_every_flag_with_its_description():
    result = _run("--help")
    assert result.returncode == 0
    for name, info in Settings.model_fields.items():
        assert f"--{name}" in result.stdout
        assert (info.description or "")[:40] in result.stdout


def test_tls_flags_load_the_certificate_before_anything_starts(tmp_path):
    from tests.tls import self_signed

    cert, key = self_signed(tmp_path, password="pw")
    settings = build_settings({"ssl_certfile": str(cert), "ssl_keyfile": str(key), "ssl_keyfile_password": "pw"})
    assert settings.ssl_certfile == str(cert)
    with pytest.raises(SettingsError) as info:  # the wrong password: refused at start, naming the flags
        build_settings({"ssl_certfile": str(cert), "ssl_keyfile": str(key), "ssl_keyfile_password": "no"})
    assert info.value.flag == "--ssl_certfile" and "--ssl_keyfile" in info.value.message
    assert build_settings({"rate_limit_storage": "redis://127.0.0.1:6379"}).rate_limit_storage.startswith("redis")


def test_the_openssl_command_of_operations_md_makes_a_certificate_the_tls_flags_take(tmp_path):
    import re
    import shutil
    import subprocess

    from tests.conftest import ROOT

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    doc = (ROOT / "docs" / "operations.md").read_text()
    command = re.search(r"^openssl req .*?(?<!\\)$", doc, re.M | re.S)
    assert command, "docs/operations.md lost its openssl example"
    subprocess.run(["bash", "-c", command.group(0)], cwd=tmp_path, check=True, capture_output=True)
    settings = build_settings({"ssl_certfile": str(tmp_path / "cert.pem"), "ssl_keyfile": str(tmp_path / "key.pem")})
    assert settings.ssl_keyfile.endswith("key.pem")
