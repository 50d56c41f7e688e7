"""Stored responses are shared state: on a real PostgreSQL (Debian's, started by the test with tests/postgres.py)
a response stored through one instance is read by a second instance, survives restarting
every instance, and stays a 404 for another API key. Keys are enforced, so the same
instances also check the Anthropic API's auth (x-api-key and Bearer, Anthropic's 401).
"""

from __future__ import annotations

import glob
import json

import anthropic
import httpx
import openai
import pytest

from tests.postgres import PostgresServer
from tests.server import RemoteServer

pytestmark = pytest.mark.skipif(not glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                                reason="PostgreSQL is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def postgres():
    with PostgresServer() as pg:
        yield pg


def instance(workdir, pg: PostgresServer) -> RemoteServer:
    keys = workdir / "keys.json"
    workdir.mkdir(parents=True, exist_ok=True)
    keys.write_text(json.dumps(["key-one", "key-two"]))
    return RemoteServer(workdir, "--openai_workers=1", f"--database_url={pg.url}",
                        "--enforce_h2ogpt_api_key=True", f"--h2ogpt_api_keys={keys}")


def test_a_stored_response_is_read_by_a_second_instance_and_survives_a_restart(postgres, tmp_path):
    with instance(tmp_path / "a", postgres) as first:
        one = first.client(api_key="key-one")
        model = one.models.list().data[0].id
        created = one.responses.create(model=model, input="Remember: blue.", max_output_tokens=8, temperature=0)
        with instance(tmp_path / "b", postgres) as second:  # its own --db_root; the same database
            again = second.client(api_key="key-one").responses.retrieve(created.id)
            assert again.output_text == created.output_text and again.id == created.id
            with pytest.raises(openai.NotFoundError):
                second.client(api_key="key-two").responses.retrieve(created.id)
            follow = second.client(api_key="key-one").responses.create(
                model=model, input="What colour?", previous_response_id=created.id, max_output_tokens=6)
            assert follow.previous_response_id == created.id
    with instance(tmp_path / "c", postgres) as restarted:  # every instance stopped, then a new one
        kept = restarted.client(api_key="key-one").responses.retrieve(created.id)
        assert kept.output_text == created.output_text
        items = restarted.client(api_key="key-one").responses.input_items.list(follow.id)
        assert items.data[0].content[0].text == "What colour?"
        with pytest.raises(openai.NotFoundError):
            restarted.client(api_key="key-two").responses.delete(created.id)
        restarted.client(api_key="key-one").responses.delete(created.id)
        with pytest.raises(openai.NotFoundError):
            restarted.client(api_key="key-one").responses.retrieve(created.id)

        # Anthropic's auth on the same instance: x-api-key (the SDK's) and Bearer, else its 401
        claude = anthropic.Anthropic(base_url=restarted.url, api_key="key-two", max_retries=0)
        message = claude.messages.create(model=model, max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
        assert message.content[0].type == "text"
        bearer = httpx.post(restarted.base_url + "/messages/count_tokens", headers={"Authorization": "Bearer key-one"},
                            json={"model": model, "messages": [{"role": "user", "content": "Hi"}]})
        assert bearer.status_code == 200 and bearer.json()["input_tokens"] > 0
        with pytest.raises(anthropic.AuthenticationError) as info:
            anthropic.Anthropic(base_url=restarted.url, api_key="wrong", max_retries=0).messages.create(
                model=model, max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
        assert info.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                               "message": "invalid API key"}}
