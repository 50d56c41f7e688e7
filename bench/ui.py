"""Time to first token: evaluate() in-process, through gradio_client, and as seen in the browser.

    python bench/ui.py [--runs=5] [--max_new_tokens=32]

1. In-process: the product's Evaluator (same model, same flags) in this process; time from
   calling evaluate() to its first chunk with text.
2. gradio_client: ``python generate.py`` serving the UI on a free port (OpenAI API off);
   time from ``Client.submit`` on /submit_nochat_api to the first streamed result with text.
3. Browser: Debian's headless chromium (Playwright) on the same app; time, measured in the
   page with ``performance.now()``, from clicking Submit to the first answer text in the chat;
   on two apps served at once, saved chats off (``--save_chats=False``, the page as it was)
   and on (the default: each exchange saved to the SQLite file under --db_root), same flags,
   taking turns run by run so that both see the same load.
4. Saved chats (src/storage/chats.py) on SQLite, and on PostgreSQL when Debian's postgresql
   is installed: one exchange saved into a chat of 100 exchanges (what an answer's end
   costs), a whole chat of 100 exchanges saved one exchange at a time, and imported at once.

Prints median and best per path and the ratio of each median to the in-process median.
The paths run one after the other, never at the same time. Needs /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

PROMPT = "Describe the sea in two sentences."
FIRST_TEXT_JS = """async () => {
  const bots = () => document.querySelectorAll("#chatbot [data-testid='bot']");
  const before = bots().length;
  const t0 = performance.now();
  document.querySelector("#submit").click();
  return await new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error("no answer text within 120 s")), 120000);
    const check = () => {
      const all = bots();
      if (all.length > before && all[all.length - 1].innerText.trim()) {
        resolve(performance.now() - t0);
        return true;
      }
      return false;
    };
    const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
    observer.observe(document.body, {childList: true, subtree: true, characterData: true});
  });
}"""


def in_process(runs: int, max_new_tokens: int) -> list[float]:
    from src.app import build_evaluator
    from src.params import EvalParams
    from src.settings import build_settings

    settings = build_settings({"max_new_tokens": max_new_tokens, "temperature": 0, "llm_backend": "transformers"})
    evaluator = build_evaluator(settings)
    times = []
    try:
        for _ in range(runs + 1):  # the first run warms up
            start = time.perf_counter()
            chunks = evaluator.evaluate(EvalParams(instruction=PROMPT, langchain_mode="LLM"))
            for chunk in chunks:
                if chunk.response.strip():
                    times.append(time.perf_counter() - start)
                    break
            chunks.close()
            for _ in evaluator.evaluate(EvalParams(instruction="ok", max_new_tokens=1)):
                pass  # let the engine settle on the cancelled run before the next one
    finally:
        evaluator.registry.shutdown()
    return times[1:]


def via_gradio_client(url: str, runs: int) -> list[float]:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    payload = str({"instruction": PROMPT, "langchain_mode": "LLM"})
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        job = client.submit(payload, api_name="/submit_nochat_api")
        for text in job:
            if ast.literal_eval(text)["response"].strip():
                times.append(time.perf_counter() - start)
                break
        job.result()
    return times[1:]


def in_browser(urls: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Browser times per app, the apps taking turns run by run (so that both see the same
    machine load): one visible page in headless Chromium, loaded afresh on each app in turn."""
    from tests.e2e.browser import browser_context, open_page

    times: dict[str, list[float]] = {name: [] for name in urls}
    with browser_context(Path(tempfile.mkdtemp(prefix="bench-chromium-"))) as context:
        page = open_page(context, next(iter(urls.values())))
        for _ in range(runs + 1):
            for name, url in urls.items():
                page.goto(url)
                page.locator("#prompt textarea").wait_for()
                time.sleep(1.0)  # the page settles (the chat list loads)
                page.locator("#prompt textarea").fill(PROMPT)
                times[name].append(page.evaluate(FIRST_TEXT_JS) / 1000.0)
                _wait_until_settled(page)
    return {name: t[1:] for name, t in times.items()}


def chat_store_times(url: str, runs: int) -> dict[str, list[float]]:
    """Seconds to save exchanges of a 100-exchange chat, on the database at ``url``."""
    from src.storage.chats import ChatOwner, ChatStore, Exchange
    from src.storage.database import Database

    db = Database(url)
    store, owner = ChatStore(db), ChatOwner("user", "bench")
    sources = [{"source": "report.pdf", "page": 3, "content": "x" * 500, "score": 0.8}] * 3
    settings = {"temperature": 0.0, "max_new_tokens": 256, "top_k_docs": 3}

    def exchange(i: int) -> Exchange:
        return Exchange(f"question {i} " * 10, f"answer {i} " * 60, sources, "smollm2", "MyData", "Query", settings)

    times: dict[str, list[float]] = {"one exchange into a chat of 100": [], "100 exchanges, one at a time": [],
                                     "import of a 100-exchange chat": []}
    try:
        for _ in range(runs):
            chat = store.create(owner)
            start = time.perf_counter()
            for i in range(100):
                store.append(owner, chat.id, exchange(i))
            times["100 exchanges, one at a time"].append(time.perf_counter() - start)
            start = time.perf_counter()
            store.append(owner, chat.id, exchange(100))
            times["one exchange into a chat of 100"].append(time.perf_counter() - start)
            data = {f"imported {chat.id}": [[f"q{i}", f"a{i} " * 60] for i in range(100)]}
            start = time.perf_counter()
            store.import_json(owner, data)
            times["import of a 100-exchange chat"].append(time.perf_counter() - start)
    finally:
        db.close()
    return times


def _wait_until_settled(page: object, quiet: float = 1.5, timeout: float = 120.0) -> None:
    """Wait until the last answer has stopped changing (it is done streaming)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        text = page.locator("#chatbot [data-testid='bot']").last.inner_text()  # type: ignore[attr-defined]
        if text != last:
            last, since = text, time.monotonic()
        elif time.monotonic() - since > quiet:
            return
        time.sleep(0.1)


def _table(title: str, results: dict[str, list[float]], base: float | None) -> None:
    print(f"\n{title}\n")
    print(f"| {'path':<44} | {'median ms':>9} | {'best ms':>8} | {'ratio':>6} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 10}|{'-' * 8}|")
    for name, times in results.items():
        median = statistics.median(times)
        ratio = f"{median / base:5.1f}x" if base else "     -"
        print(f"| {name:<44} | {median * 1000:9.1f} | {min(times) * 1000:8.1f} | {ratio:>6} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    args = parser.parse_args()

    from tests.e2e.gradio_server import GradioApp

    results = {"evaluate() in-process": in_process(args.runs, args.max_new_tokens)}
    flags = (f"--max_new_tokens={args.max_new_tokens}", "--temperature=0")
    apps = {saving: GradioApp(Path(tempfile.mkdtemp(prefix="bench-ui-")), *flags, f"--save_chats={saving}")
            for saving in (False, True)}
    try:
        for app in apps.values():
            app.start()
        results["gradio_client /submit_nochat_api"] = via_gradio_client(apps[False].url, args.runs)
        browser = in_browser({f"browser (headless chromium), saved chats {'on' if saving else 'off'}": app.url
                              for saving, app in apps.items()}, args.runs)
        results.update(browser)
    finally:
        for app in apps.values():
            app.stop()
    _table(f"Time to first token, {args.runs} runs each (prompt: {PROMPT!r})", results,
           statistics.median(results["evaluate() in-process"]))

    sqlite = f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-chats-')) / 'h2ogpt.sqlite'}"
    _table("Saved chats on SQLite", chat_store_times(sqlite, args.runs), None)
    try:
        from tests.postgres import PostgresServer

        with PostgresServer() as pg:
            _table("Saved chats on PostgreSQL (local cluster, fsync off)", chat_store_times(pg.url, args.runs), None)
    except RuntimeError as exc:
        print(f"\n(PostgreSQL skipped: {exc})")


if __name__ == "__main__":
    main()
