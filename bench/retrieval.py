"""Retrieval quality on a manual nobody here wrote: answer-passage recall@5 and MRR by mode.

    apt-get install -y git-doc          # git's manual pages, /usr/share/doc/git-doc
    python bench/retrieval.py [--corpus=/usr/share/doc/git-doc] [--db_root=/tmp/h2ogpt-bench-retrieval]
                              [--reranker_model=PATH] [--plot=docs/images/retrieval.png] [--json=PATH]

Ingests the pages of :data:`bench.retrieval_questions.CORPUS_FILES` through the product's
DocumentService (an unchanged page is skipped on a second run, so later runs only query),
then asks the 48 fixed questions of :mod:`bench.retrieval_questions` in each mode:

- ``dense``: embeddings only (``hybrid_search=False``)
- ``lexical``: the BM25 index alone
- ``hybrid-rrf`` and ``hybrid-convex`` (alpha = weight of the dense score; the default
  is convex with alpha 0.3)
- the default + rerank when ``--reranker_model`` is given

A hit is an *answer passage* when it is a chunk of the question's page containing the
answer verbatim. Prints recall@1/5, MRR@10 and retrieval latency per mode, and ingestion
chunks/s, as a Markdown table.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

from bench.retrieval_questions import CORPUS_FILES, QUESTIONS  # noqa: E402

log = logging.getLogger("bench.retrieval")
K = 10


def relevant(hit, page: str, answer: str) -> bool:
    return Path(str(hit.metadata.get("source", ""))).name == page and answer in hit.content


def run_mode(docs, store, mode: str, options, reranker=None) -> dict:
    from src.docqa.retrieval import RetrievalOptions  # noqa: F401 (the options' type)

    ranks, times = [], []
    docs.retrieval, docs.reranker = options, reranker
    for question, page, answer in QUESTIONS:
        start = time.perf_counter()
        if mode == "lexical":
            ids = [h.id for h in store.search_lexical(question, K)]
            hits = store.get_ids(ids)[0]
        else:
            hits = docs.retrieve("UserData", question, K, None)
        times.append(time.perf_counter() - start)
        rank = next((i for i, h in enumerate(hits, start=1) if relevant(h, page, answer)), None)
        ranks.append(rank)
    n = len(QUESTIONS)
    return {
        "mode": mode,
        "recall@1": sum(1 for r in ranks if r == 1) / n,
        "recall@5": sum(1 for r in ranks if r is not None and r <= 5) / n,
        "mrr@10": sum(1.0 / r for r in ranks if r is not None) / n,
        "p50_ms": statistics.median(times) * 1000,
        "misses@5": [QUESTIONS[i][0] for i, r in enumerate(ranks) if r is None or r > 5],
    }


def main(corpus: str = "/usr/share/doc/git-doc", db_root: str = "/tmp/h2ogpt-bench-retrieval",
         reranker_model: str = "", plot: str = "", json_path: str = "", alphas: str | tuple[float, ...] = "0.3,0.5,0.7",
         candidates: int = 40) -> None:
    from src.docqa.embeddings import Embedder
    from src.docqa.rerank import Reranker
    from src.docqa.retrieval import RetrievalOptions
    from src.docqa.service import DocumentService

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    folder = Path(corpus)
    missing = [f for f in CORPUS_FILES if not (folder / f).is_file()]
    if missing:
        sys.exit(f"retrieval.py: {len(missing)} pages missing under {folder} (apt-get install git-doc): "
                 f"{missing[:3]}")
    embedder = Embedder().load()
    docs = DocumentService(embedder, db_root=db_root)
    start = time.perf_counter()
    report = docs.add_files("UserData", [(folder / f, f) for f in CORPUS_FILES], None)
    elapsed = time.perf_counter() - start
    store = docs._store(docs.collection("UserData", None))
    chunks = store.count()
    ingestion = {"files": len(CORPUS_FILES), "chunks": chunks, "written": report.chunks,
                 "seconds": elapsed, "chunks_per_s": report.chunks / elapsed if report.chunks else None}
    log.info("corpus: %s; %s", ingestion, report.summary())

    base = RetrievalOptions(candidates=candidates)
    modes = [("dense", replace(base, hybrid=False)), ("lexical", base),
             ("hybrid-rrf", replace(base, fusion="rrf"))]
    alpha_list = alphas if isinstance(alphas, (tuple, list)) else str(alphas).split(",")
    modes += [(f"hybrid-convex a={float(a)}", replace(base, fusion="convex", alpha=float(a)))
              for a in alpha_list if str(a)]
    rows = [run_mode(docs, store, name, options) for name, options in modes]
    if reranker_model:
        reranker = Reranker(reranker_model).load()
        rows.append(run_mode(docs, store, f"hybrid-convex a={base.alpha}+rerank", base, reranker))
    print(f"\n{len(QUESTIONS)} questions, {chunks} chunks of {len(CORPUS_FILES)} git-doc pages "
          f"(embedding window {embedder.window})\n")
    print("| mode | recall@1 | recall@5 | MRR@10 | p50 ms |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['mrr@10']:.3f} "
              f"| {r['p50_ms']:.1f} |")
    if report.chunks:
        print(f"\ningestion: {report.chunks} chunks in {elapsed:.1f} s = {ingestion['chunks_per_s']:.1f} chunks/s")
    for r in rows:
        if r["misses@5"]:
            print(f"\n{r['mode']} misses@5: " + "; ".join(r["misses@5"]))
    if json_path:
        Path(json_path).write_text(json.dumps({"ingestion": ingestion, "rows": rows}, indent=1))
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.2))
        names = [r["mode"] for r in rows]
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [r["recall@5"] for r in rows], 0.4, label="recall@5")
        ax.bar([x + 0.2 for x in xs], [r["mrr@10"] for r in rows], 0.4, label="MRR@10")
        ax.set_xticks(list(xs), names, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"git-doc: {len(QUESTIONS)} questions, {chunks} chunks")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(plot, dpi=110)
    docs.close()


if __name__ == "__main__":
    import fire

    fire.Fire(main)
