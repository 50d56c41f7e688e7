"""The lexical (BM25) index kept beside each collection: local Chroma has no keyword search.

Texts are tokenized by bm25s' tokenizer with a Snowball stemmer (PyStemmer) and bm25s'
English stop words; an identifier such as ``status.showUntrackedFiles`` or
``GIT_HTTP_EXPORT_ALL`` is indexed whole and by its parts, so either finds it. Scores are
Lucene's BM25 (k1 1.5, b 0.75, the formula bm25s' ``lucene`` method uses).

bm25s' own index is a matrix built once over a fixed corpus; this one must follow every add,
update and delete without being rebuilt, so it is kept the way Lucene keeps its: immutable
*segments* (one per write, each the postings of its chunks) plus deletion marks, with the
collection statistics (documents, lengths, document frequencies) summed over segments at
query time, and small segments merged in the background of writes (tiered: a merge happens
when more than ``MAX_SEGMENTS`` exist, so a chunk is re-merged O(log n) times). Deleted
chunks count in the statistics until their segment is merged, as in Lucene.

Persistence (a local collection): ``<db_dir>/lexical/`` holds ``vocab.txt`` (append-only),
one ``seg-*.npz`` per segment, ``deleted.tsv`` (append-only ``segment\\tid`` lines) and
``manifest.json`` (written last, atomically), so a crash mid-write leaves the previous
state; what Chroma has and the index lacks is reconciled on open (see
:meth:`src.docqa.store.ChromaStore.lexical`). A server collection's index lives in memory,
rebuilt from the server's chunks on first use and followed through the collection's
generation mark.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

K1 = 1.5
B = 0.75
MAX_SEGMENTS = 8
_WORD = re.compile(r"\w+(?:[.\-]\w+)*")
_PART = re.compile(r"[A-Za-z]+|\d+")


def split_words(text: str) -> list[str]:
    """Words of ``text``; a compound identifier also yields its parts (``a.b_c`` -> a.b_c, a, b, c)."""
    words: list[str] = []
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)
        words.append(word)
        if not word.isalnum():
            words.extend(p for p in re.split(r"[._\-]+", word) if p)
    return words


class Tokenizer:
    """bm25s' tokenizer (stemmed, stop words removed) with a vocabulary we own and persist."""

    def __init__(self) -> None:
        import bm25s.stopwords
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english")
        self._stop = frozenset(bm25s.stopwords.STOPWORDS_EN)
        self.words: list[str] = []
        self.ids: dict[str, int] = {}
        self._stems: dict[str, str] = {}

    def _stem(self, words: list[str]) -> list[str]:
        todo = [w for w in set(words) if w not in self._stems]
        if todo:
            for word, stem in zip(todo, self._stemmer.stemWords(todo), strict=True):
                self._stems[word] = stem
            if len(self._stems) > 500_000:
                self._stems.clear()
                return list(self._stemmer.stemWords(words))
        return [self._stems[w] for w in words]

    def terms(self, text: str) -> list[str]:
        return self._stem([w for w in split_words(text) if w not in self._stop and len(w) > 1])

    def encode(self, text: str, grow: bool) -> list[int]:
        """Term ids of ``text``; unknown terms are added (``grow``) or dropped."""
        out = []
        for term in self.terms(text):
            index = self.ids.get(term)
            if index is None and grow:
                index = self.ids[term] = len(self.words)
                self.words.append(term)
            if index is not None:
                out.append(index)
        return out


@dataclass
class Segment:
    """The postings of one batch of chunks, sorted by term."""

    name: str
    ids: np.ndarray        # chunk ids (str)
    origins: np.ndarray    # str
    sources: np.ndarray    # str
    lengths: np.ndarray    # int32, terms per chunk
    terms: np.ndarray      # int32 per posting, sorted
    docs: np.ndarray       # int32 per posting (row in this segment)
    tfs: np.ndarray        # float32 per posting
    alive: np.ndarray      # bool per chunk

    @classmethod
    def build(cls, name: str, ids: Sequence[str], origins: Sequence[str], sources: Sequence[str],
              encoded: Sequence[Sequence[int]]) -> Segment:
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int32, count=len(encoded))
        flat = np.fromiter((t for e in encoded for t in e), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(encoded), dtype=np.int64), lengths)
        terms, docs, tfs = _count(flat, rows)
        return cls(name, np.asarray(ids, dtype=str), np.asarray(origins, dtype=str),
                   np.asarray(sources, dtype=str), lengths, terms, docs, tfs,
                   np.ones(len(encoded), dtype=bool))

    def term_counts(self, mask: np.ndarray) -> np.ndarray:
        """Term ids of the postings of the chunks in ``mask`` (for document frequencies)."""
        return self.terms[mask[self.docs]]

    def save(self, folder: Path) -> None:
        tmp = folder / f".{self.name}.tmp.npz"
        np.savez(tmp, ids=self.ids, origins=self.origins, sources=self.sources, lengths=self.lengths,
                 terms=self.terms, docs=self.docs, tfs=self.tfs)
        os.replace(tmp, folder / f"{self.name}.npz")

    @classmethod
    def load(cls, folder: Path, name: str) -> Segment:
        with np.load(folder / f"{name}.npz") as data:
            return cls(name, data["ids"], data["origins"], data["sources"], data["lengths"],
                       data["terms"], data["docs"], data["tfs"], np.ones(len(data["ids"]), dtype=bool))


def _count(terms: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Postings (term, row, tf) sorted by term, from one (term, row) pair per occurrence."""
    if terms.size == 0:
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty, np.zeros(0, dtype=np.float32)
    key = terms * (int(rows.max()) + 1) + rows
    unique, counts = np.unique(key, return_counts=True)
    width = int(rows.max()) + 1
    return ((unique // width).astype(np.int32), (unique % width).astype(np.int32),
            counts.astype(np.float32))


@dataclass(frozen=True)
class LexicalHit:
    id: str
    score: float


class LexicalIndex:
    """BM25 over the chunks of one collection; thread-safe; ``folder`` None keeps it in memory."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self.tokenizer = Tokenizer()
        self.segments: list[Segment] = []
        self._where: dict[str, tuple[Segment, int]] = {}
        self._df = np.zeros(0, dtype=np.int64)
        self._docs = 0          # chunks in segments, deleted ones included (as Lucene counts)
        self._length = 0
        self._lock = threading.RLock()
        self.generation = ""    # what the collection's generation mark was when last followed
        self._saved_vocab = 0
        if folder is not None and (folder / "manifest.json").is_file():
            self._load()

    # --- state ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._where)

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._where)

    def _account(self, segment: Segment, sign: int, mask: np.ndarray | None = None) -> None:
        mask = np.ones(len(segment.ids), dtype=bool) if mask is None else mask
        counted = segment.term_counts(mask)
        if self._df.size < len(self.tokenizer.words):
            self._df = np.concatenate([self._df, np.zeros(len(self.tokenizer.words) - self._df.size,
                                                          dtype=np.int64)])
        if counted.size:
            self._df[: len(self.tokenizer.words)] += sign * np.bincount(
                counted, minlength=len(self.tokenizer.words))[: len(self.tokenizer.words)]
        self._docs += sign * int(mask.sum())
        self._length += sign * int(segment.lengths[mask].sum())

    # --- writes ---------------------------------------------------------------------------
    def add(self, ids: Sequence[str], texts: Sequence[str], origins: Sequence[str],
            sources: Sequence[str]) -> None:
        """Index chunks; an id already present is replaced."""
        if not ids:
            return
        with self._lock:
            self._delete(ids, persist=True)
            encoded = [self.tokenizer.encode(t, grow=True) for t in texts]
            segment = Segment.build(f"seg-{uuid.uuid4().hex[:12]}", ids, origins, sources, encoded)
            self._attach(segment)
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                segment.save(self.folder)
            self._maybe_merge()
            self._persist_manifest()

    def delete(self, ids: Iterable[str]) -> int:
        """Remove chunks by id; returns how many were indexed."""
        with self._lock:
            removed = self._delete(list(ids), persist=True)
            if removed:
                self._maybe_merge()
                self._persist_manifest()
            return removed

    def _attach(self, segment: Segment) -> None:
        self.segments.append(segment)
        for row, id_ in enumerate(segment.ids.tolist()):
            if segment.alive[row]:
                self._where[id_] = (segment, row)
        self._account(segment, +1)

    def _delete(self, ids: Sequence[str], persist: bool) -> int:
        lines = []
        for id_ in ids:
            found = self._where.pop(id_, None)
            if found is not None:
                segment, row = found
                segment.alive[row] = False
                lines.append(f"{segment.name}\t{id_}\n")
        if lines and persist and self.folder is not None:
            with open(self.folder / "deleted.tsv", "a", encoding="utf-8") as handle:
                handle.writelines(lines)
        return len(lines)

    def _maybe_merge(self) -> None:
        """Tiered merging: while there are too many segments, merge the smallest half."""
        dead = [s for s in self.segments if not s.alive.any()]
        for segment in dead:
            self._drop(segment)
        while len(self.segments) > MAX_SEGMENTS:
            by_size = sorted(self.segments, key=lambda s: int(s.alive.sum()))
            self._merge(by_size[: max(2, len(by_size) // 2)])
        for segment in list(self.segments):
            if len(segment.ids) > 1000 and segment.alive.mean() < 0.5:
                self._merge([segment])

    def _drop(self, segment: Segment) -> None:
        self._account(segment, -1)
        self.segments.remove(segment)
        if self.folder is not None:
            (self.folder / f"{segment.name}.npz").unlink(missing_ok=True)

    def _merge(self, group: list[Segment]) -> None:
        ids, origins, sources, encoded_rows, encoded_terms, encoded_tfs, lengths = [], [], [], [], [], [], []
        offset = 0
        for segment in group:
            keep = segment.alive
            remap = np.cumsum(keep) - 1 + offset
            posting = keep[segment.docs]
            encoded_rows.append(remap[segment.docs[posting]])
            encoded_terms.append(segment.terms[posting])
            encoded_tfs.append(segment.tfs[posting])
            ids.append(segment.ids[keep])
            origins.append(segment.origins[keep])
            sources.append(segment.sources[keep])
            lengths.append(segment.lengths[keep])
            offset += int(keep.sum())
        terms = np.concatenate(encoded_terms)
        order = np.lexsort((np.concatenate(encoded_rows), terms))
        merged = Segment(f"seg-{uuid.uuid4().hex[:12]}", np.concatenate(ids), np.concatenate(origins),
                         np.concatenate(sources), np.concatenate(lengths).astype(np.int32),
                         terms[order].astype(np.int32),
                         np.concatenate(encoded_rows)[order].astype(np.int32),
                         np.concatenate(encoded_tfs)[order].astype(np.float32),
                         np.ones(offset, dtype=bool))
        for segment in group:
            self._drop(segment)
        if self.folder is not None:
            merged.save(self.folder)
        self._attach(merged)

    # --- persistence ----------------------------------------------------------------------
    def _persist_manifest(self) -> None:
        if self.folder is None:
            return
        vocab = self.folder / "vocab.txt"
        saved = self._saved_vocab
        if saved < len(self.tokenizer.words):
            mode = "a" if saved else "w"
            with open(vocab, mode, encoding="utf-8") as handle:
                if mode == "a":
                    handle.truncate(_vocab_bytes(vocab, saved))
                handle.writelines(w + "\n" for w in self.tokenizer.words[saved:])
                handle.flush()
                os.fsync(handle.fileno())
            self._saved_vocab = len(self.tokenizer.words)
        manifest = {"version": 1, "vocab": len(self.tokenizer.words),
                    "segments": [s.name for s in self.segments]}
        tmp = self.folder / ".manifest.json.tmp"
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, self.folder / "manifest.json")
        live = {s.name for s in self.segments}
        deleted = self.folder / "deleted.tsv"
        if deleted.is_file() and deleted.stat().st_size > 1 << 20:  # keep only live marks
            lines = [ln for ln in deleted.read_text(encoding="utf-8").splitlines(keepends=True)
                     if ln.split("\t", 1)[0] in live]
            tmp_deleted = self.folder / ".deleted.tsv.tmp"
            tmp_deleted.write_text("".join(lines), encoding="utf-8")
            os.replace(tmp_deleted, deleted)

    def _load(self) -> None:
        assert self.folder is not None
        manifest = json.loads((self.folder / "manifest.json").read_text())
        words = (self.folder / "vocab.txt").read_text(encoding="utf-8").splitlines()[: manifest["vocab"]]
        self.tokenizer.words = words
        self.tokenizer.ids = {w: i for i, w in enumerate(words)}
        segments = {name: Segment.load(self.folder, name) for name in manifest["segments"]}
        deleted = self.folder / "deleted.tsv"
        marks: dict[str, list[str]] = {}
        if deleted.is_file():
            for line in deleted.read_text(encoding="utf-8").splitlines():
                name, _, id_ = line.partition("\t")
                marks.setdefault(name, []).append(id_)
        for name, segment in segments.items():
            if name in marks:
                segment.alive &= ~np.isin(segment.ids, np.asarray(marks[name], dtype=str))
            self._attach(segment)
        self._saved_vocab = len(words)
        for path in self.folder.glob("seg-*.npz"):  # left by a write that never finished
            if path.stem not in segments:
                path.unlink(missing_ok=True)
        log.info("lexical index %s: %d chunks in %d segments", self.folder, len(self), len(self.segments))

    # --- search ---------------------------------------------------------------------------
    def search(self, query: str, k: int, names: Sequence[str] = ()) -> list[LexicalHit]:
        """The ``k`` best chunks for ``query`` by BM25 (score > 0), best first; ``names``
        keeps only chunks whose origin or source is one of them.

        The largest segments go first: the ``k``-th best score found so far is a floor that
        lets :func:`_score` skip, in the segments after, the chunks that cannot reach it."""
        with self._lock:
            terms = sorted(set(self.tokenizer.encode(query, grow=False)))
            if not terms or not self._where or k <= 0:
                return []
            avgdl = max(self._length / max(self._docs, 1), 1e-9)
            idf = {t: math.log(1 + (self._docs - self._df[t] + 0.5) / (self._df[t] + 0.5)) for t in terms}
            found: list[tuple[float, str]] = []
            floor = 0.0
            wanted = np.asarray(list(names), dtype=str) if names else None
            for segment in sorted(self.segments, key=lambda s: -len(s.ids)):
                eligible = segment.alive
                if wanted is not None:
                    eligible = eligible & (np.isin(segment.origins, wanted) | np.isin(segment.sources, wanted))
                scored = _score(segment, terms, idf, avgdl, k, eligible, floor)
                if scored is None:
                    continue
                scores, rows = scored
                rows = rows[scores[rows] > 0]
                if rows.size > k:
                    rows = rows[np.argpartition(-scores[rows], k - 1)[:k]]
                found.extend((float(scores[r]), str(segment.ids[r])) for r in rows)
                if len(found) >= k:
                    floor = sorted((score for score, _ in found), reverse=True)[k - 1]
            found.sort(key=lambda x: (-x[0], x[1]))
            return [LexicalHit(id_, score) for score, id_ in found[:k]]


def _score(segment: Segment, terms: list[int], idf: dict[int, float], avgdl: float, k: int,
           eligible: np.ndarray, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray] | None:
    """BM25 scores of the segment's rows and the rows that can be among the ``k`` best
    ``eligible`` ones scoring at least ``floor`` (the ``k``-th best of the segments searched
    before); the scores of those rows are exact, the others' may miss terms.

    Terms go term at a time, the rarest (highest bound) first, as Lucene's MaxScore does: once
    the terms left could add at most ``bound`` to a row, and ``k`` eligible rows already score
    ``threshold`` > ``bound`` (or ``floor`` is above ``bound``), a row the terms so far gave
    less than ``threshold - bound`` cannot reach the top ``k``; the terms left are then scored
    only for the rows that can (a search of each term's postings, which are sorted by row),
    not over their whole postings: a word found in most chunks costs a few hundred lookups
    instead of a pass over them all."""
    wanted = np.asarray(terms, dtype=segment.terms.dtype)  # a list would cast all postings to int64 first
    left = np.searchsorted(segment.terms, wanted, side="left")
    right = np.searchsorted(segment.terms, wanted, side="right")
    present = [(idf[t] * (K1 + 1), t, int(lo), int(hi)) for t, lo, hi in zip(terms, left, right, strict=True)
               if lo < hi]
    if not present:
        return None
    present.sort(key=lambda x: -x[0])  # tf / (tf + norm) < 1: idf * (k1 + 1) bounds a term's share
    rest = [0.0] * (len(present) + 1)
    for i in range(len(present) - 1, -1, -1):
        rest[i] = rest[i + 1] + present[i][0]
    scores = np.zeros(len(segment.ids), dtype=np.float32)
    seen = np.zeros(len(segment.ids), dtype=bool)
    touched = np.zeros(0, dtype=segment.docs.dtype)  # the eligible rows scored so far (unique)
    candidates: np.ndarray | None = None  # the rows that can still reach the top k
    for i, (_bound, term, lo, hi) in enumerate(present):
        docs = segment.docs[lo:hi]
        tf = segment.tfs[lo:hi]
        if candidates is not None:
            at = np.minimum(np.searchsorted(docs, candidates), docs.size - 1)
            found = docs[at] == candidates
            docs, tf = candidates[found], tf[at[found]]
        else:
            keep = eligible[docs]
            docs, tf = docs[keep], tf[keep]
        norm = K1 * (1 - B + B * segment.lengths[docs] / avgdl)
        scores[docs] += idf[term] * tf * (K1 + 1) / (tf + norm)
        if candidates is None:
            fresh = docs[~seen[docs]]  # a term's postings name each row once
            seen[fresh] = True
            touched = np.concatenate([touched, fresh])
            if i + 1 < len(present):
                threshold = floor
                if touched.size >= k:
                    live = scores[touched]
                    threshold = max(threshold, float(np.partition(live, live.size - k)[live.size - k]))
                if threshold > rest[i + 1]:
                    candidates = touched[scores[touched] >= threshold - rest[i + 1]]
    return scores, (touched if candidates is None else candidates)


def _vocab_bytes(path: Path, words: int) -> int:
    """Byte length of the first ``words`` lines of ``path``."""
    size = 0
    with open(path, "rb") as handle:
        for _ in range(words):
            line = handle.readline()
            if not line:
                break
            size += len(line)
    return size
