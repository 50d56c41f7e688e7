"""Document Q&A speed: ingestion against raw sentence-transformers, and query latency by size.

    python bench/docqa.py [--chunks=512] [--sizes=1000,10000,100000] [--queries=50] [--plot=docs/images/docqa.png]

1. Ingestion: the same ``--chunks`` chunks of synthetic text (512 tokens each) are embedded
   by a raw ``SentenceTransformer.encode`` and ingested by the product's Ingestor (split,
   embed, write to Chroma) in the same run; prints chunks/s of both and their ratio.
2. Retrieval: collections of each size are filled with precomputed unit vectors (random,
   so the figure is the index's, not the embedder's), then ``--queries`` questions are
   embedded and searched through DocumentService.retrieve; prints p50/p95 latency.
Writes a PNG of latency against collection size when matplotlib is installed.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)

WORDS = ("river mountain lantern copper violet harbor meadow falcon timber glacier orbit canyon "
         "pepper saddle thunder ember willow quartz beacon ledger").split()


def synthetic_text(seed: int, words: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def bench_ingestion(chunks: int, workdir: Path) -> tuple[float, float]:
    from src.docqa.embeddings import Embedder
    from src.docqa.ingest import Ingestor
    from src.docqa.store import ChromaStore

    embedder = Embedder().load()
    # one file per chunk-sized paragraph group: 8 paragraphs of ~400 tokens per file
    texts = [synthetic_text(i, 400) for i in range(chunks)]
    embedder.embed(texts[:8])  # warm-up
    start = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True,
                          show_progress_bar=False)
    raw = chunks / (time.perf_counter() - start)
    files = []
    for i in range(0, chunks, 8):
        path = workdir / f"doc{i:05d}.txt"
        path.write_text("\n\n".join(texts[i:i + 8]))
        files.append((path, path.name))
    store = ChromaStore(workdir / "db_dir_Bench", "Bench", embedder.name)
    ingestor = Ingestor(embedder)
    start = time.perf_counter()
    report = ingestor.ingest_files(store, files)
    ours = report.chunks / (time.perf_counter() - start)
    return raw, ours


def bench_queries(sizes: list[int], queries: int, workdir: Path) -> list[tuple[int, float, float]]:
    import numpy as np

    from src.docqa.embeddings import Embedder
    from src.docqa.service import DocumentService

    embedder = Embedder().load()
    rng = np.random.default_rng(0)
    results = []
    for size in sizes:
        root = workdir / f"q{size}"
        docs = DocumentService(embedder, db_root=root)
        info = docs.create_collection("Bench", "shared", None)
        store = docs._store(info)
        step = 5000
        for start in range(0, size, step):
            n = min(step, size - start)
            vectors = rng.standard_normal((n, embedder.dimension)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids = [f"c{start + i}" for i in range(n)]
            metas = [{"origin": f"f{(start + i) // 50}", "source": f"f{(start + i) // 50}",
                      "chunk_id": (start + i) % 50, "n_chunks": 50, "page": 0, "hash": "x",
                      "ingested_at": "bench"} for i in range(n)]
            store.upsert(ids, vectors, [f"chunk {start + i}" for i in range(n)], metas)
        latencies = []
        for q in range(queries + 3):
            start_t = time.perf_counter()
            docs.retrieve("Bench", synthetic_text(10_000 + q, 12), 5, None, max_distance=2.0)
            if q >= 3:  # first queries load the index
                latencies.append((time.perf_counter() - start_t) * 1000)
        latencies.sort()
        p50 = statistics.median(latencies)
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        results.append((size, p50, p95))
        print(f"  {size:>7} chunks: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms", flush=True)
        docs.close()
    return results


def plot(results: list[tuple[int, float, float]], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    sizes = [r[0] for r in results]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(sizes, [r[1] for r in results], "o-", label="p50")
    ax.plot(sizes, [r[2] for r in results], "s--", label="p95")
    ax.set_xscale("log")
    ax.set_xlabel("chunks in the collection")
    ax.set_ylabel("retrieve latency (ms)")
    ax.set_title("Document retrieval: embed question + Chroma top-5")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(chunks: int = 512, sizes: str | tuple[int, ...] = "1000,10000,100000", queries: int = 50,
         plot_path: str = "docs/images/docqa.png") -> None:
    size_list = [int(s) for s in (sizes.split(",") if isinstance(sizes, str) else sizes)]
    with tempfile.TemporaryDirectory(prefix="bench-docqa-") as tmp:
        workdir = Path(tmp)
        raw, ours = bench_ingestion(chunks, workdir)
        print(f"ingestion ({chunks} chunks of ~512 tokens): raw encode {raw:.1f} chunks/s, "
              f"Ingestor {ours:.1f} chunks/s, ratio {ours / raw:.2f}", flush=True)
        print("retrieval (embed the question + top-5 from Chroma):", flush=True)
        results = bench_queries(size_list, queries, workdir)
    plot(results, str(ROOT / plot_path) if not Path(plot_path).is_absolute() else plot_path)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
