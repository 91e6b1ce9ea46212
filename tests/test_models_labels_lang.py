"""Label-name mapping and language detection (pure Python, no model)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models import ModelSettings
from models.labels import scheme_from_id2label
from models.lang import detect_language, normalize_lang


@pytest.mark.parametrize("id2label, buckets", [
    ({0: "negative", 1: "neutral", 2: "positive"}, ("negative", "neutral", "positive")),
    ({0: "NEG", 1: "NEU", 2: "POS"}, ("negative", "neutral", "positive")),
    ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, ("negative", "neutral", "positive")),
    ({"0": "positive", "1": "negative", "2": "neutral"}, ("positive", "negative", "neutral")),
    ({0: "NEGATIVE", 1: "POSITIVE"}, ("negative", "positive")),
    ({0: "LABEL_0", 1: "LABEL_1"}, ("negative", "positive")),
    ({0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"},
     ("negative", "negative", "neutral", "positive", "positive")),
    ({0: "Very Negative", 1: "Negative", 2: "Neutral", 3: "Positive", 4: "Very Positive"},
     ("negative", "negative", "neutral", "positive", "positive")),
    ({i: f"LABEL_{i}" for i in range(5)}, ("negative", "negative", "neutral", "positive", "positive")),
])
def test_scheme_buckets(id2label, buckets):
    assert scheme_from_id2label(id2label).buckets == buckets


def test_scheme_valence_and_aggregate():
    s = scheme_from_id2label({0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"})
    assert s.valence == (-1.0, -0.5, 0.0, 0.5, 1.0)
    p3, sent = s.aggregate(np.array([[0.0, 0.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0, 0, 0]], dtype=np.float32))
    assert np.allclose(p3, [[0, 0, 1], [1, 0, 0]])
    assert np.allclose(sent, [1.0, -0.75])
    two = scheme_from_id2label({0: "negative", 1: "positive"})
    assert two.valence == (-1.0, 1.0)


def test_scheme_unmappable_needs_label_map():
    emo = {0: "anger", 1: "joy", 2: "optimism", 3: "sadness"}
    with pytest.raises(ValueError, match="label_map"):
        scheme_from_id2label(emo)
    s = scheme_from_id2label(emo, {"anger": "negative", "joy": "positive", "optimism": "positive",
                                   "sadness": "negative"})
    assert s.buckets == ("negative", "positive", "positive", "negative")
    with pytest.raises(ValueError):
        scheme_from_id2label(emo, {"anger": "negative"})


@pytest.mark.parametrize("text, lang", [
    ("I absolutely love this new phone, best purchase ever", "en"),
    ("the delivery was late again and nobody answered", "en"),
    ("lol", "en"),
    ("¡Qué asco de servicio, nunca más!", "es"),
    ("Je suis très déçu par ce service", "fr"),
    ("Das ist wirklich nicht gut", "de"),
    ("Obrigado pelo atendimento, muito bom", "pt"),
    ("外卖送得太慢了，差评", "zh"),
    ("iPhone 太差了", "zh"),
    ("今日はとても楽しかったです", "ja"),
    ("배송이 너무 느려요", "ko"),
    ("Очень плохой сервис", "ru"),
    ("Це дуже погано, їжа холодна", "uk"),
    ("خدمة سيئة جدا", "ar"),
    ("שירות גרוע", "he"),
    ("Πολύ κακή εξυπηρέτηση", "el"),
    ("บริการแย่มาก", "th"),
    ("बहुत खराब सेवा", "hi"),
    ("😡😡😡", "und"),
    ("   \n\t ", "und"),
    ("", "und"),
    ("12345 !!! http://t.co/abc @someone", "und"),
])
def test_detect_language(text, lang):
    assert detect_language(text) == lang


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_detect_language_total(text):
    code = detect_language(text)
    assert isinstance(code, str) and 2 <= len(code) <= 3


@pytest.mark.parametrize("tag, norm", [
    ("en-US", "en"), ("zh_Hant_TW", "zh"), ("ZH-cn", "zh"), ("iw", "he"), ("und", None), ("", None),
    (None, None), ("qme", None), ("zxx", None), ("ja", "ja"),
])
def test_normalize_lang(tag, norm):
    assert normalize_lang(tag) == norm


def test_settings_forbid_typos_and_validate():
    ModelSettings(name="bundled", languages=["en", "zh-CN"], quantize=False)
    assert ModelSettings(languages=["EN", "zh_Hans"]).languages == ["en", "zh"]
    with pytest.raises(ValidationError):
        ModelSettings(nmae="bundled")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        ModelSettings(device="tpu")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ModelSettings(batch_size=0)
    with pytest.raises(ValidationError):
        ModelSettings(languages=["und"])


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, models, monitor.cli.model; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
