"""Image references for vision models: data: URIs always, http(s) URLs only when allowed."""

from __future__ import annotations

import pytest

from src.engine.image_inputs import decode_image, image_bytes
from src.errors import InvalidParamsError
from src.settings import build_settings
from src.settings_checks import SettingsError
from tests.vision import png_bytes, png_data_uri


def test_a_data_uri_decodes_to_the_image_it_holds():
    data = image_bytes(png_data_uri((0, 255, 0)))
    assert data == png_bytes((0, 255, 0))
    image = decode_image(data)
    assert image.mode == "RGB" and image.size == (40, 30) and image.getpixel((3, 3)) == (0, 255, 0)


@pytest.mark.parametrize("reference, words", [
    ("data:image/png,plain-text", "base64"),
    ("data:image/png;base64,@@not base64@@", "invalid base64"),
    ("file:///etc/passwd", "data: URI"),
    ("ftp://127.0.0.1/a.png", "data: URI"),
])
def test_bad_references_are_parameter_errors(reference, words):
    with pytest.raises(InvalidParamsError) as info:
        image_bytes(reference)
    assert words in info.value.message and info.value.param == "images"


def test_an_http_url_is_not_fetched_unless_the_flag_allows():
    with pytest.raises(InvalidParamsError) as info:
        image_bytes("http://127.0.0.1:9/cat.png", allow_fetch=False)
    assert "--allow_image_url_fetch" in info.value.message


def test_bytes_that_are_not_an_image_are_refused():
    with pytest.raises(InvalidParamsError, match="could not be read"):
        decode_image(b"GIF89a broken")


def test_vision_model_flags(tmp_path):
    with pytest.raises(SettingsError) as info:
        build_settings({"visible_vision_models": str(tmp_path)})
    assert info.value.flag == "--visible_vision_models" and "config.json" in info.value.message
    (tmp_path / "config.json").write_text("{}")
    settings = build_settings({"visible_vision_models": str(tmp_path)})
    assert settings.visible_vision_models == [str(tmp_path)] and settings.allow_image_url_fetch is False
