"""HTTPS (issue 22): with --ssl_certfile, --ssl_keyfile and --ssl_keyfile_password (a
self-signed certificate made here, its key encrypted), the OpenAI API on both workers and the
Gradio UI answer over TLS to the openai SDK and gradio_client; plain HTTP to either port is
refused."""

from __future__ import annotations

import ast
import ssl

import httpx
import openai
import pytest
from gradio_client import Client

from bench.load import client_port, worker_of_port
from tests.server import RemoteServer
from tests.tls import self_signed

PASSWORD = "s3cret"


class TLSServer(RemoteServer):
    """generate.py with both ports over TLS; ``ready`` checks the API over HTTPS."""

    def __init__(self, workdir, cert, *flags: str) -> None:
        super().__init__(workdir, *flags, gradio=True)
        self.cert = str(cert)
        self.verify = ssl.create_default_context(cafile=self.cert)  # trust exactly this certificate
        self.plain_url, self.plain_gradio_url = self.url, self.gradio_url
        self.url = self.url.replace("http://", "https://")
        self.base_url = self.url + "/v1"
        self.gradio_url = self.gradio_url.replace("http://", "https://")

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/health", verify=self.verify, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(workdir, PASSWORD)
    with TLSServer(workdir, cert, "--openai_workers=2", f"--ssl_certfile={cert}", f"--ssl_keyfile={key}",
                   f"--ssl_keyfile_password={PASSWORD}") as srv:
        yield srv


def test_the_openai_sdk_works_over_https_on_every_worker(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0,
                           http_client=httpx.Client(verify=server.verify))
    models = [client.models.list().data[0].id for _ in range(6)]  # new connections: both workers
    assert len(set(models)) == 1
    answer = client.chat.completions.create(model=models[0], max_tokens=8, temperature=0,
                                            messages=[{"role": "user", "content": "Say hi."}])
    assert answer.choices[0].message.content
    chunks = list(client.chat.completions.create(model=models[0], max_tokens=8, stream=True,
                                                 messages=[{"role": "user", "content": "Say hi."}]))
    assert chunks and chunks[-1].choices[0].finish_reason in ("stop", "length")
    workers = server.worker_pids()
    served_by = set()
    for _ in range(60):  # fresh connections until each worker has answered one over TLS
        with httpx.Client(verify=server.verify) as fresh:
            response = fresh.get(server.url + "/health")
            assert response.status_code == 200
            served_by.add(worker_of_port(workers, client_port(response)))
        if served_by >= set(workers):
            break
    assert served_by == set(workers) and len(workers) == 2


def test_gradio_client_works_over_https(server):
    served = ssl.get_server_certificate(("127.0.0.1", int(server.gradio_url.rsplit(":", 1)[1].strip("/"))))
    assert served.strip() == open(server.cert).read().strip()  # the UI presents our certificate
    client = Client(server.gradio_url, ssl_verify=False, verbose=False, download_files=False)
    names = ast.literal_eval(client.predict(api_name="/model_names"))
    assert names and names[0]["base_model"]


@pytest.mark.parametrize("which", ["api", "ui"])
def test_plain_http_to_a_tls_port_is_refused(server, which):
    url = server.plain_url + "/health" if which == "api" else server.plain_gradio_url
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=10)
