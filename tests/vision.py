"""A tiny vision-language model built from configs: LLaVA with a 2-layer CLIP vision tower
and a 2-layer Llama text model, random (seeded) weights, and the packaged SmolLM2
tokenizer with an ``<image>`` token added. Nothing is downloaded; it loads and answers in
well under a second, so tests prove the real loading and generation code.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<image>{% else %}{{ p['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IMAGE_SIZE = 32
PATCH = 8


def smollm2_tokenizer_dir() -> str:
    """The packaged default model's folder (its GGUF converted once, as the engine does)."""
    from src.engine.loader import weights_dir
    from src.engine.model_source import resolve_model
    from src.settings import build_settings

    settings = build_settings({})
    return weights_dir(resolve_model(settings.base_model), settings)[0]


def make_tiny_vision_model(folder: Path, max_positions: int = 512) -> Path:
    """Save a random tiny LLaVA model and its processor in ``folder``; returns it."""
    import torch
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_attention_heads=2,
                              num_hidden_layers=2, image_size=IMAGE_SIZE, patch_size=PATCH,
                              projection_dim=16)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                       num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                       max_position_embeddings=max_positions, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-1, vision_feature_select_strategy="full")
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                           crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer, patch_size=PATCH, vision_feature_select_strategy="full",
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE,
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder


#: Tokens one image takes in the tiny model's prompt: (32 / 8)^2 patches + the CLS token.
IMAGE_TOKENS = (IMAGE_SIZE // PATCH) ** 2 + 1


def png_bytes(color: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (40, 30)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def png_data_uri(color: tuple[int, int, int] = (255, 0, 0)) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(color)).decode()
