"""Data-only package: the bundled default sentiment model (safetensors, config, tokenizer, MODEL_CARD.md)."""
