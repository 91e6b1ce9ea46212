"""What a sentiment model is to the rest of flarewatch: its settings, its results and the `Scorer` protocol.

Kept apart from `models/__init__.py` (which loads scorers) so the implementations can import it.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import Field, field_validator

from models.labels import Label
from models.lang import normalize_lang
from monitor.core.settings import Strict

#: Directory of the bundled default model (safetensors, config, tokenizer, MODEL_CARD.md).
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


@dataclass(frozen=True)
class Sentiment:
    label: Label  # "negative" | "neutral" | "positive"
    confidence: float  # probability of `label`, in [0, 1]
    sentiment: float  # signed sentiment in [-1, 1]: P(positive) - P(negative) for 3-class models
    lang: str  # ISO 639-1 code of the text (the source's tag when it had one)
    model: str  # "id@version" of the model that produced this score


class ModelSettings(Strict):
    """The ``[model]`` table of the daemon configuration."""

    name: str = "bundled"  # "bundled", a local model directory, or a Hugging Face hub id
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(default=None, ge=1)  # torch CPU threads (process-wide); None = torch default
    batch_size: int = Field(default=64, ge=1)
    max_length: int = Field(default=256, ge=8, le=4096)  # tokens; longer texts are truncated (padding is per batch)
    quantize: bool = True  # dynamic int8 quantisation of Linear layers, CPU only
    # Languages the model is trusted for ("*" = all). None = the model's own declaration
    # (flarewatch.json; the bundled model says ["en", "zh"]), or ["en"] for a model without one.
    languages: list[str] | None = None
    fallback: str | None = None  # model name used for other languages; None => those posts are unscored
    label_map: dict[str, Label] | None = None  # model label name -> our label, for unusual label sets
    revision: str | None = None  # hub revision (branch, tag or commit) for hub ids
    max_unknown_fraction: float = Field(default=0.5, ge=0.0, le=1.0)  # more [UNK] tokens than this => unscored

    @field_validator("languages")
    @classmethod
    def _norm_languages(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        out = []
        for code in v:
            n = "*" if code.strip() == "*" else normalize_lang(code)
            if n is None:
                raise ValueError(f"not a language code: {code!r}")
            out.append(n)
        return out

    @field_validator("name")
    @classmethod
    def _nonempty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("model name must not be empty")
        return v.strip()


@runtime_checkable
class Scorer(Protocol):
    model_id: str  # "id@version"

    def score(self, texts: Sequence[str], langs: Sequence[str | None] | None = None) -> list[Sentiment | None]:
        """One result per text, in order. None = unscored (empty text, no letters, or a
        language the model is not trusted for and no fallback is configured). ``langs``,
        where given and not None, is the source's language tag and wins over detection."""
        ...
