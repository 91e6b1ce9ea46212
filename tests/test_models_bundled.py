"""The bundled default model: loads offline (network blocked) and gets obvious cases right."""
from __future__ import annotations

import json
import socket

import pytest

pytest.importorskip("torch")

from models import BUNDLED_DIR, ModelSettings, Scorer, load_scorer  # noqa: E402

POSITIVE_EN = [
    "I love this phone, it's absolutely wonderful!",
    "Best concert ever, thank you so much guys :)",
    "Great service and super friendly staff, highly recommend",
]
NEGATIVE_EN = [
    "This is the worst service ever, I hate it.",
    "My flight got cancelled again and nobody helps. Terrible airline.",
    "The app keeps crashing and support never answers. Awful.",
]
POSITIVE_ZH = ["太好吃了，下次还会再点！", "服务态度非常好，很满意", "送餐很快，味道不错，好评"]
NEGATIVE_ZH = ["送餐太慢了，饭都凉了，差评", "质量太差了，非常失望", "等了两个小时还没送到，再也不点了"]


def _no_network(*args, **kwargs):
    raise OSError("network access is blocked in this test")


@pytest.fixture(scope="session")
def bundled() -> Scorer:
    assert (BUNDLED_DIR / "model.safetensors").is_file(), "models/bundled/model.safetensors is missing"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        mp.setenv("HF_HUB_OFFLINE", "1")
        return load_scorer(ModelSettings(device="cpu"))


def test_bundled_files_small_and_complete():
    names = {p.name for p in BUNDLED_DIR.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
            "flarewatch.json", "MODEL_CARD.md"} <= names
    total = sum(p.stat().st_size for p in BUNDLED_DIR.iterdir() if p.is_file())
    assert total < 50 * 1024 * 1024
    meta = json.loads((BUNDLED_DIR / "flarewatch.json").read_text(encoding="utf-8"))
    assert set(meta["languages"]) >= {"en", "zh"}


def test_bundled_identity(bundled):
    assert bundled.model_id.startswith("flarewatch-minilm-sentiment@")
    assert load_scorer(ModelSettings(device="cpu")) is bundled


@pytest.mark.parametrize("lang, pos, neg", [("en", POSITIVE_EN, NEGATIVE_EN), ("zh", POSITIVE_ZH, NEGATIVE_ZH)])
def test_bundled_obvious_examples(bundled, lang, pos, neg):
    res = bundled.score(pos + neg)
    assert all(r is not None and r.lang == lang for r in res)
    assert all(r.sentiment > 0.1 and r.label != "negative" for r in res[: len(pos)])
    assert all(r.sentiment < -0.3 and r.label == "negative" for r in res[len(pos):])
    if lang == "en":  # English has a trained neutral class; for Chinese only the sign is trained
        assert [r.label for r in res] == ["positive"] * len(pos) + ["negative"] * len(neg)
        assert all(r.sentiment > 0.3 for r in res[: len(pos)])


def test_bundled_unsupported_and_empty(bundled):
    res = bundled.score(["", "   ", "🔥🔥🔥", "今日はとても楽しかったです", "Очень плохой сервис",
                         "Great game tonight!"])
    assert res[:5] == [None] * 5
    assert res[5] is not None and res[5].label == "positive"


def test_bundled_int8_agrees_with_fp32(bundled):
    fp32 = load_scorer(ModelSettings(device="cpu", quantize=False))
    texts = POSITIVE_EN + NEGATIVE_EN + POSITIVE_ZH + NEGATIVE_ZH
    a, b = bundled.score(texts), fp32.score(texts)
    assert [x.label for x in a] == [x.label for x in b]
    assert max(abs(x.sentiment - y.sentiment) for x, y in zip(a, b)) < 0.15
    assert fp32.model_id != bundled.model_id
