"""Moderation in the engine: the classifier of --moderation_model (a tiny random-weight BERT
built here) and the embedding-similarity heuristic over the packaged embedding model."""

from __future__ import annotations

import math

import pytest

from src.contract import MODERATION_CATEGORIES, ModerateRequest
from src.errors import InvalidParamsError
from src.moderation import ClassifierModerator, EmbeddingModerator, build_moderator
from src.moderation.classifier import THRESHOLD, category_of, label_mapping
from src.settings import build_settings
from src.settings_checks import SettingsError
from tests.moderation_model import LABELS, build_tiny_classifier

TEXTS = ["I will stab you.", "What a lovely day for a picnic."]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("moderation") / "tiny-moderation")


def test_labels_map_onto_openai_categories_by_name_and_dataset_code():
    assert category_of("self_harm_intent") == category_of("Self-Harm/Intent") == "self-harm/intent"
    assert category_of("V2") == "violence/graphic" and category_of("HR") == "harassment"
    assert category_of("OK") is None and category_of("toxic") is None
    assert label_mapping(dict(enumerate(LABELS))) == {1: "violence", 2: "self-harm/intent", 4: "hate/threatening"}


def test_classifier_scores_every_category_from_the_model(classifier_dir):
    moderator = ClassifierModerator(str(classifier_dir))
    verdicts = moderator.score(TEXTS)
    probs = moderator.probabilities(TEXTS)
    assert len(verdicts) == len(probs) == 2
    for verdict, row in zip(verdicts, probs, strict=True):
        assert list(verdict.scores) == list(MODERATION_CATEGORIES) == list(verdict.flags)
        # the mapped labels carry the model's sigmoid outputs; unmapped categories are 0
        assert verdict.scores["violence"] == pytest.approx(row[1])
        assert verdict.scores["self-harm/intent"] == pytest.approx(row[2])
        assert verdict.scores["hate/threatening"] == pytest.approx(row[4])
        assert verdict.scores["sexual"] == 0.0 and verdict.scores["illicit"] == 0.0
        assert all(0.0 < row[i] < 1.0 for i in (1, 2, 4))
        assert verdict.flags == {c: s >= THRESHOLD for c, s in verdict.scores.items()}
    assert probs[0] != probs[1]  # the input matters
    assert moderator.score(TEXTS) == verdicts  # deterministic


def test_single_label_classifier_gets_a_softmax(tmp_path):
    moderator = ClassifierModerator(str(build_tiny_classifier(tmp_path / "softmax", multi_label=False)))
    assert all(math.isclose(sum(row), 1.0, rel_tol=1e-5) for row in moderator.probabilities(TEXTS))


def test_flag_picks_the_classifier_and_refuses_a_folder_without_config(classifier_dir, tmp_path):
    moderator = build_moderator(build_settings({"moderation_model": str(classifier_dir)}))
    result = moderator.moderate(ModerateRequest(texts=TEXTS))
    assert result.method == "classifier" and result.model == "tiny-moderation" and len(result.results) == 2
    with pytest.raises(SettingsError, match="moderation_model"):
        build_settings({"moderation_model": str(tmp_path)})


def test_heuristic_scores_a_violent_sentence_higher_on_violence():
    moderator = build_moderator(build_settings({}))
    assert isinstance(moderator.scorer(), EmbeddingModerator)
    result = moderator.moderate(ModerateRequest(texts=[
        "He stabbed the man and beat him to death.", "The library opens at nine on weekdays."]))
    violent, neutral = result.results
    assert result.method == "embedding_similarity" and result.model == "all-MiniLM-L6-v2"
    assert violent.scores["violence"] > neutral.scores["violence"] + 0.2
    assert violent.flags["violence"] and not any(neutral.flags.values())
    with pytest.raises(InvalidParamsError):
        moderator.moderate(ModerateRequest(texts=[]))
