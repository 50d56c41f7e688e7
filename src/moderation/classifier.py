"""Moderation by a trained text classifier (``--moderation_model``).

The flag takes a local folder of a transformers ``AutoModelForSequenceClassification``
(nothing is downloaded). Its ``id2label`` names are mapped onto OpenAI's categories:

- a label that is a category's name, ignoring case and punctuation (``self_harm_intent``,
  ``Self-Harm/Intent`` and ``self-harm/intent`` are one), is that category;
- the short codes of OpenAI's own moderation dataset (``S``, ``H``, ``V``, ``HR``, ``SH``,
  ``S3``, ``H2``, ``V2``, used by e.g. KoalaAI/Text-Moderation) are theirs;
- any other label (``OK``, ``neutral``, ``toxic``) is not a category and is ignored;
  a category no label maps to scores 0.0.

A model whose ``problem_type`` is ``multi_label_classification`` gets a sigmoid per label,
any other a softmax over its labels. A category is flagged at ``THRESHOLD``.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

from src.contract import MODERATION_CATEGORIES, ModerationVerdict

log = logging.getLogger(__name__)

THRESHOLD = 0.5
MAX_TOKENS = 512
BATCH_SIZE = 16

#: The label codes of OpenAI's moderation dataset (Markov et al., 2022).
DATASET_CODES = {"s": "sexual", "h": "hate", "v": "violence", "hr": "harassment", "sh": "self-harm",
                 "s3": "sexual/minors", "h2": "hate/threatening", "v2": "violence/graphic"}


class ModerationModelError(ValueError):
    """``--moderation_model`` is not a local classifier folder."""


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_KEY = {_key(c): c for c in MODERATION_CATEGORIES}


def category_of(label: str) -> str | None:
    """OpenAI's category a classifier label stands for, or None."""
    return _BY_KEY.get(_key(label)) or DATASET_CODES.get(label.strip().lower())


def label_mapping(id2label: dict[int, str]) -> dict[int, str]:
    """Label index -> OpenAI category, for the labels that map to one."""
    out = {}
    for index, label in id2label.items():
        category = category_of(str(label))
        if category is not None:
            out[int(index)] = category
    return out


class ClassifierModerator:
    """Scores texts with a sequence-classification model on the CPU; thread-safe."""

    method = "classifier"
    threshold = THRESHOLD

    def __init__(self, path: str) -> None:
        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise ModerationModelError(
                f"--moderation_model={path!r} is not a local folder with a config.json; this server "
                "runs offline, so give the path of a transformers text-classification model")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name = folder.name
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(folder))
        self.model: Any = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
        self.mapping = label_mapping(dict(self.model.config.id2label))
        self.multi_label = self.model.config.problem_type == "multi_label_classification"
        self._lock = threading.Lock()
        if not self.mapping:
            log.warning("--moderation_model %s: none of its labels %s is an OpenAI category; every "
                        "score will be 0", folder, list(self.model.config.id2label.values()))

    def probabilities(self, texts: list[str]) -> list[list[float]]:
        """Per text, the probability of each of the model's labels."""
        import torch

        rows: list[list[float]] = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), BATCH_SIZE):
                batch = self.tokenizer(texts[start:start + BATCH_SIZE], padding=True, truncation=True,
                                       max_length=MAX_TOKENS, return_tensors="pt")
                logits = self.model(**batch).logits.float()
                probs = logits.sigmoid() if self.multi_label else logits.softmax(dim=-1)
                rows.extend(probs.tolist())
        return rows

    def score(self, texts: list[str]) -> list[ModerationVerdict]:
        verdicts = []
        for probs in self.probabilities(texts):
            scores = dict.fromkeys(MODERATION_CATEGORIES, 0.0)
            for index, category in self.mapping.items():
                scores[category] = max(scores[category], float(probs[index]))
            verdicts.append(ModerationVerdict(scores=scores,
                                              flags={c: s >= THRESHOLD for c, s in scores.items()}))
        return verdicts
