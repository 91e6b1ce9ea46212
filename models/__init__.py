"""flarewatch sentiment scoring.

    from models import ModelSettings, load_scorer
    scorer = load_scorer(ModelSettings())          # the bundled model, offline
    scorer.score(["great service!", "外卖太慢了，差评"])
    # [Sentiment(label='positive', confidence=0.97, sentiment=0.95, lang='en', model='flarewatch-minilm-sentiment@1.0.0+...'), ...]

Importing this package is cheap: torch and transformers are only imported by
``load_scorer``.
"""
from __future__ import annotations

import threading

from models.base import BUNDLED_DIR, ModelSettings, Scorer, Sentiment
from models.labels import Label
from models.lang import detect_language, normalize_lang

__all__ = [
    "BUNDLED_DIR",
    "Label",
    "ModelSettings",
    "Scorer",
    "Sentiment",
    "detect_language",
    "load_scorer",
    "normalize_lang",
]

_CACHE: dict[str, Scorer] = {}
_LOCK = threading.Lock()


def load_scorer(settings: ModelSettings | None = None) -> Scorer:
    """Load (once per process for equal settings) and return the scorer."""
    settings = settings or ModelSettings()
    key = settings.model_dump_json()
    with _LOCK:
        scorer = _CACHE.get(key)
        if scorer is None:
            from models.transformer import TransformerScorer

            fallback = None
            if settings.fallback:
                fb_settings = settings.model_copy(update={"name": settings.fallback, "fallback": None,
                                                          "languages": ["*"], "label_map": None})
                fallback = _CACHE.get(fb_settings.model_dump_json())
                if fallback is None:
                    fallback = TransformerScorer(fb_settings)
                    _CACHE[fb_settings.model_dump_json()] = fallback
            scorer = TransformerScorer(settings, fallback=fallback)
            _CACHE[key] = scorer
        return scorer
