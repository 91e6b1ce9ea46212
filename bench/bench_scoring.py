"""Scoring throughput: posts/s for tweet-length texts through the full ``Scorer.score`` path
(language detection, tokenisation, dynamic padding, model).

    python bench/bench_scoring.py                      # bundled model, 2 threads, batch 64, int8 and fp32
    python bench/bench_scoring.py --threads 1 --quantize int8
    python bench/bench_scoring.py --texts my_posts.txt  # one post per line

Default texts are synthetic English tweets: 1,024 texts of 12 to 28 words, about 29 WordPiece
tokens on average, the same as TweetEval. They are generated with a fixed seed, so runs can be compared.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_WORDS = (
    "the a to and of in is for on my this that it you i with at be just so not but have was are "
    "today tomorrow tonight new day time game show love hate great good bad awful amazing terrible "
    "service delivery order app update phone battery price support customer flight delayed again "
    "really very never always still can't don't won't i'm it's thanks lol omg wow ugh seriously "
    "best worst ever happy sad angry excited waiting refund broken crash outage team fans season "
    "watch watching going got get see saw think know want need people everyone nobody @user #fail "
    "#win #monday ! ? ... :) :("
).split()


def synthetic_tweets(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(12, 28))]
        out.append(" ".join(words).capitalize())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--n", type=int, default=1024, help="texts per timed run")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the median is reported")
    ap.add_argument("--quantize", choices=["int8", "fp32", "both"], default="both")
    ap.add_argument("--texts", type=Path, help="file with one text per line instead of synthetic tweets")
    ap.add_argument("--json", action="store_true", help="print one JSON object per configuration")
    a = ap.parse_args(argv)

    import torch

    from models import ModelSettings
    from models.transformer import TransformerScorer

    torch.set_num_threads(a.threads)
    if a.texts:
        texts = [t for t in a.texts.read_text(encoding="utf-8").splitlines() if t.strip()][: a.n]
    else:
        texts = synthetic_tweets(a.n)
    modes = {"int8": [True], "fp32": [False], "both": [True, False]}[a.quantize]
    for q in modes:
        settings = ModelSettings(name=a.model, threads=a.threads, batch_size=a.batch_size, quantize=q,
                                 device="cpu", languages=["*"])
        scorer = TransformerScorer(settings)
        n_tok = sum(len(x) for x in scorer.tokenizer(texts[:256], truncation=True, max_length=128)["input_ids"])
        scorer.score(texts[: a.batch_size * 2])  # warm-up
        runs = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            scorer.score(texts)
            runs.append(len(texts) / (time.perf_counter() - t0))
        res = {"model": scorer.model_id, "quantized": q, "threads": a.threads, "batch_size": a.batch_size,
               "texts": len(texts), "mean_tokens": round(n_tok / min(256, len(texts)), 1),
               "posts_per_s": round(statistics.median(runs), 1), "runs": [round(r, 1) for r in runs]}
        if a.json:
            print(json.dumps(res))
        else:
            print(f"{'int8' if q else 'fp32'}: {res['posts_per_s']:.1f} posts/s  (batch {a.batch_size}, "
                  f"{a.threads} threads, {len(texts)} texts, {res['mean_tokens']} tokens/text, runs {res['runs']}) "
                  f"[{scorer.model_id}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
