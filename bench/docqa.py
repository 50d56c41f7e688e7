"""Document Q&A speed: ingestion against raw sentence-transformers, query latency by size, OCR.

    python bench/docqa.py [--chunks=512] [--sizes=1000,10000,100000] [--queries=50] [--plot_path=docs/images/docqa.png]
                          [--ocr_pages=5] [--keep=DIR]

``--keep=DIR`` keeps the filled collections in DIR (``DIR/q<size>``) and reuses one that
already holds its size, so a large collection is filled once (a 1,000,000-chunk fill takes
Chroma most of an hour on two cores) and queried in later, quiet runs; ``--chunks=0`` and
``--ocr_pages=0`` skip those parts.

1. Ingestion: the same ``--chunks`` chunks of synthetic text (512 tokens each) are embedded
   by a raw ``SentenceTransformer.encode`` and ingested by the product's Ingestor (split,
   embed, write to Chroma) in the same run; prints chunks/s of both and their ratio.
   The lexical (BM25) index is on, as in the product: the Ingestor writes it too.
2. Retrieval: collections of each size are filled with precomputed unit vectors (random,
   so the figure is the index's, not the embedder's) and 60-word texts drawn from a
   20,000-word Zipf vocabulary (what the BM25 index searches), then ``--queries`` questions
   are embedded and searched through DocumentService.retrieve, hybrid (the default) and
   dense only; prints p50/p95 latency of both.
3. OCR: ``--ocr_pages`` paragraphs of this repository's docs rendered as page images, read
   back by Tesseract; prints word accuracy and seconds per page.
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


def zipf_texts(rng, count: int, words: int, vocab: int = 20_000) -> list[str]:
    """Texts of ``words`` words drawn from a Zipf(1.1) vocabulary of ``vocab`` made-up words."""
    ranks = rng.zipf(1.1, size=(count, words)) % vocab
    return [" ".join(f"w{r}x" for r in row) for row in ranks]


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
    store.open()  # one-time set-up (Chroma's client, about 0.9 s) is outside the timer, as the model's load is
    ingestor = Ingestor(embedder)
    start = time.perf_counter()
    report = ingestor.ingest_files(store, files)
    ours = report.chunks / (time.perf_counter() - start)
    return raw, ours


def fill(store, size: int, dimension: int) -> None:
    """``size`` random unit vectors with 60-word Zipf texts, through the product's store
    (Chroma and the lexical index), in 5,000-chunk batches (each from its own seed); resumes
    a partial fill."""
    import numpy as np

    step = 5000
    done = store.count() // step * step
    for start in range(done, size, step):
        n = min(step, size - start)
        rng = np.random.default_rng(start)
        vectors = rng.standard_normal((n, dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"c{start + i}" for i in range(n)]
        metas = [{"origin": f"f{(start + i) // 50}", "source": f"f{(start + i) // 50}",
                  "chunk_id": (start + i) % 50, "n_chunks": 50, "page": 0, "hash": "x",
                  "ingested_at": "bench"} for i in range(n)]
        store.upsert(ids, vectors, zipf_texts(rng, n, 60), metas)
        if (start // step) % 20 == 19:
            print(f"    filled {start + n:,} of {size:,} chunks", flush=True)


def bench_queries(sizes: list[int], queries: int, workdir: Path) -> list[tuple[float, ...]]:
    import numpy as np

    from src.docqa.embeddings import Embedder
    from src.docqa.service import DocumentService

    embedder = Embedder().load()
    rng = np.random.default_rng(0)
    results = []
    for size in sizes:
        root = workdir / f"q{size}"
        docs = DocumentService(embedder, db_root=root)
        names = [c.name for c in docs.list_collections(None)]
        info = docs.collection("Bench", None) if "Bench" in names else docs.create_collection("Bench", "shared", None)
        store = docs._store(info)
        if store.count() < size:
            fill(store, size, embedder.dimension)
        questions = zipf_texts(rng, queries + 3, 8)
        row: list[float] = [size]
        for hybrid in (True, False):
            latencies = []
            for q, question in enumerate(questions):
                start_t = time.perf_counter()
                docs.retrieve("Bench", question, 5, None, max_distance=2.0, hybrid=hybrid)
                if q >= 3:  # first queries load the index
                    latencies.append((time.perf_counter() - start_t) * 1000)
            latencies.sort()
            row += [statistics.median(latencies), latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]]
        results.append(tuple(row))
        print(f"  {size:>7} chunks: hybrid p50 {row[1]:6.1f} ms p95 {row[2]:6.1f} ms; "
              f"dense p50 {row[3]:6.1f} ms p95 {row[4]:6.1f} ms", flush=True)
        docs.close()
    return results


def bench_ocr(pages: int) -> tuple[float, float]:
    """Word accuracy and seconds per page of Tesseract on paragraphs of our docs drawn as images."""
    import re

    from src.docqa.ocr import TesseractOcr
    from tests.docqa.fixtures import text_image

    engine = TesseractOcr.find()
    if engine is None:
        print("tesseract not installed: no OCR figures")
        return 0.0, 0.0
    text = (ROOT / "docs" / "document_qa.md").read_text()
    paragraphs = [p for p in text.split("\n\n") if len(p.split()) > 40 and not p.startswith(("```", "|"))]
    found = total = 0
    elapsed = 0.0
    for paragraph in paragraphs[:pages]:
        words = re.findall(r"[A-Za-z0-9]+", paragraph)
        image = text_image(" ".join(words))
        start = time.perf_counter()
        read = re.findall(r"[A-Za-z0-9]+", engine.image_text(image))
        elapsed += time.perf_counter() - start
        pool: dict[str, int] = {}
        for w in read:
            pool[w] = pool.get(w, 0) + 1
        for w in words:
            total += 1
            if pool.get(w, 0) > 0:
                pool[w] -= 1
                found += 1
    return found / max(total, 1), elapsed / max(min(pages, len(paragraphs)), 1)


def plot(results: list[tuple[float, ...]], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    sizes = [r[0] for r in results]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(sizes, [r[1] for r in results], "o-", label="hybrid p50")
    ax.plot(sizes, [r[2] for r in results], "s--", label="hybrid p95")
    ax.plot(sizes, [r[3] for r in results], "o-", label="dense p50")
    ax.plot(sizes, [r[4] for r in results], "s--", label="dense p95")
    ax.set_xscale("log")
    ax.set_xlabel("chunks in the collection")
    ax.set_ylabel("retrieve latency (ms)")
    ax.set_title("Retrieval, top 5: embed the question + Chroma (+ BM25, fused)", fontsize=10)
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(chunks: int = 512, sizes: str | int | tuple[int, ...] = "1000,10000,100000", queries: int = 50,
         plot_path: str = "docs/images/docqa.png", ocr_pages: int = 5, keep: str = "") -> None:
    if isinstance(sizes, int):  # fire gives one number as an int
        sizes = (sizes,)
    size_list = [int(s) for s in (sizes.split(",") if isinstance(sizes, str) else sizes)]
    with tempfile.TemporaryDirectory(prefix="bench-docqa-") as tmp:
        workdir = Path(tmp)
        if chunks:
            raw, ours = bench_ingestion(chunks, workdir)
            print(f"ingestion ({chunks} chunks of ~512 tokens): raw encode {raw:.1f} chunks/s, "
                  f"Ingestor {ours:.1f} chunks/s, ratio {ours / raw:.2f}", flush=True)
        print("retrieval (embed the question + top-5 from Chroma, hybrid: + BM25 and fusion):", flush=True)
        results = bench_queries(size_list, queries, Path(keep) if keep else workdir)
    if ocr_pages:
        accuracy, seconds = bench_ocr(ocr_pages)
        print(f"OCR (Tesseract, {ocr_pages} pages of docs/document_qa.md drawn at 40 px): word accuracy "
              f"{accuracy:.3f}, {seconds:.2f} s/page", flush=True)
    plot(results, str(ROOT / plot_path) if not Path(plot_path).is_absolute() else plot_path)

if __name__ == "__main__":
    import fire

    fire.Fire(main)
