"""Transformers backend and `flarewatch score`, on tiny random-weight models built here."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from typer.testing import CliRunner  # noqa: E402

from models import ModelSettings, Sentiment, load_scorer  # noqa: E402
from models.transformer import CPU_PASS_OVERHEAD_TOKENS, TransformerScorer, plan_batches  # noqa: E402

WORDS = ("good great love happy bad awful hate terrible service food late slow fast the is was it "
         "this a very not i we you , . ! ? # @ lol").split()
CHARS = list("好差慢快外卖服务很不太了的是我们")
EDGE_TEXTS = [
    "good service",
    "",
    "   \n\t  ",
    "😡😡😡",
    "I hate this 😡 #fail",
    "外卖太慢了，差评",
    "mixed 中文 and English 好",
    "great " * 5000,  # huge: truncated
    "Очень плохо",
    "a",
]


def make_tiny(tmp: Path, id2label: dict[int, str], seed: int = 0) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(seed)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *CHARS]
    tok = BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, model_max_length=512)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=48, max_position_embeddings=256, num_labels=len(id2label),
                     id2label=id2label, label2id={v: k for k, v in id2label.items()})
    model = BertForSequenceClassification(cfg).eval()
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    return tmp


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("tiny")
    return {
        "3": make_tiny(base / "three", {0: "negative", 1: "neutral", 2: "positive"}),
        "2": make_tiny(base / "two", {0: "NEGATIVE", 1: "POSITIVE"}),
        "5": make_tiny(base / "five", {i: f"{i + 1} stars" if i else "1 star" for i in range(5)}),
        "generic3": make_tiny(base / "generic", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, seed=1),
    }


def scorer_for(path: Path, **kw) -> TransformerScorer:
    opts = dict(name=str(path), quantize=False, languages=["*"], batch_size=4, device="cpu")
    opts.update(kw)
    return TransformerScorer(ModelSettings(**opts))


@pytest.mark.parametrize("kind", ["3", "2", "5", "generic3"])
def test_label_mapping_matches_probabilities(tiny_dirs, kind):
    sc = scorer_for(tiny_dirs[kind])
    texts = ["good service", "awful food", "the food was late"]
    probs = sc.predict_proba(texts)
    res = sc.score(texts)
    n = probs.shape[1]
    assert n == {"3": 3, "2": 2, "5": 5, "generic3": 3}[kind]
    valence = {3: [-1, 0, 1], 2: [-1, 1], 5: [-1, -0.5, 0, 0.5, 1]}[n]
    bucket = {3: [0, 1, 2], 2: [0, 2], 5: [0, 0, 1, 2, 2]}[n]
    for p, r in zip(probs, res):
        assert isinstance(r, Sentiment)
        agg = np.zeros(3)
        for i, b in enumerate(bucket):
            agg[b] += p[i]
        assert r.label == ("negative", "neutral", "positive")[int(agg.argmax())]
        assert r.confidence == pytest.approx(agg.max(), abs=1e-5)
        assert r.sentiment == pytest.approx(float(np.dot(p, valence)), abs=1e-5)
        assert -1.0 <= r.sentiment <= 1.0 and 0.0 <= r.confidence <= 1.0
        assert r.model == sc.model_id and "@" in r.model
    if n == 2:
        assert all(r.label != "neutral" for r in res)


def test_batching_equals_one_by_one(tiny_dirs):
    sc = scorer_for(tiny_dirs["3"], batch_size=3)
    texts = [t for t in EDGE_TEXTS if t.strip()] + ["good", "bad bad bad bad bad", "happy happy lol"]
    batched = sc.predict_proba(texts)
    single = np.concatenate([sc.predict_proba([t]) for t in texts])
    assert np.allclose(batched, single, atol=1e-5)
    # order independence
    rev = sc.predict_proba(texts[::-1])[::-1]
    assert np.allclose(batched, rev, atol=1e-5)


def _plan_cost(lengths, plan, overhead):
    return sum(overhead + len(p) * max(lengths[i] for i in p) for p in plan)


def _chunks(lengths, size):
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[s:s + size] for s in range(0, len(order), size)]


@pytest.mark.parametrize("seed", range(6))
def test_batch_plan_covers_every_text_once_and_never_costs_more_than_chunks(seed):
    rng = np.random.default_rng(seed)
    n, size = int(rng.integers(1, 300)), int(rng.integers(1, 70))
    lengths = [int(x) for x in rng.integers(3, 120, n)]
    for overhead in (0, 8, CPU_PASS_OVERHEAD_TOKENS, 500, None):
        plan = plan_batches(lengths, size, overhead)
        assert sorted(i for p in plan for i in p) == list(range(n))
        assert all(1 <= len(p) <= size for p in plan)
        widths = [[lengths[i] for i in p] for p in plan]
        assert all(a[-1] <= b[0] for a, b in zip(widths, widths[1:])), "passes are runs of the sorted texts"
        charged = overhead if overhead is not None else 0
        assert _plan_cost(lengths, plan, charged) <= _plan_cost(lengths, _chunks(lengths, size), charged)
        if overhead is None:  # the fewest passes, as chunks would take
            assert len(plan) == -(-n // size)


def test_batch_plan_separates_short_from_long_texts_when_padding_costs_more_than_a_pass():
    lengths = [40] * 20 + [10] * 30  # mixed in one pass, the 30 short texts would carry 900 pad tokens
    plan = plan_batches(lengths, 64, CPU_PASS_OVERHEAD_TOKENS)
    assert [sorted(p) for p in plan] == [list(range(20, 50)), list(range(20))]
    assert plan_batches(lengths, 64, None) == [list(range(20, 50)) + list(range(20))]  # GPU: one pass
    assert sorted(map(len, plan_batches([7] * 130, 64, CPU_PASS_OVERHEAD_TOKENS))) == [2, 64, 64]  # no padding
    assert plan_batches([], 64, CPU_PASS_OVERHEAD_TOKENS) == []


def test_edge_texts(tiny_dirs):
    sc = scorer_for(tiny_dirs["3"], max_length=64, max_unknown_fraction=1.0)
    res = sc.score(EDGE_TEXTS)
    assert len(res) == len(EDGE_TEXTS)
    by_text = dict(zip(EDGE_TEXTS, res))
    assert by_text[""] is None and by_text["   \n\t  "] is None and by_text["😡😡😡"] is None
    assert by_text["good service"].lang == "en"
    assert by_text["外卖太慢了，差评"].lang == "zh"
    assert by_text["great " * 5000].lang == "en"
    assert by_text["Очень плохо"].lang == "ru"
    assert sc.score([]) == []
    with pytest.raises(TypeError):
        sc.score("a single string")  # type: ignore[arg-type]


def test_language_routing_and_fallback(tiny_dirs):
    only_en = scorer_for(tiny_dirs["3"], languages=["en"])
    res = only_en.score(["good service", "外卖太慢了", "Очень плохо", "good service"],
                        langs=[None, None, None, "de"])
    assert res[0] is not None and res[0].lang == "en"
    assert res[1] is None and res[2] is None
    assert res[3] is None  # the source's tag wins over detection
    res = only_en.score(["外卖太慢了"], langs=["en-US"])
    assert res[0] is not None and res[0].lang == "en"

    settings = ModelSettings(name=str(tiny_dirs["3"]), quantize=False, languages=["en"],
                             fallback=str(tiny_dirs["2"]), device="cpu")
    routed = load_scorer(settings)
    assert load_scorer(settings) is routed  # one load per process
    out = routed.score(["good service", "外卖太慢了", "😡"])
    assert out[0].model == routed.model_id
    assert out[1] is not None and out[1].model != routed.model_id and out[1].lang == "zh"
    assert out[2] is None


def test_versions_differ_between_weights(tiny_dirs):
    a = scorer_for(tiny_dirs["3"]).model_id
    b = scorer_for(tiny_dirs["generic3"]).model_id
    assert a != b
    assert scorer_for(tiny_dirs["3"]).model_id == a
    q = scorer_for(tiny_dirs["3"], quantize=True)
    assert q.model_id.endswith("-int8") and q.quantized
    assert q.score(["good service"])[0] is not None


def test_unknown_token_guard(tiny_dirs):
    sc = scorer_for(tiny_dirs["3"])  # default: more than half [UNK] => unscored
    res = sc.score(["qwerty asdfgh zxcvb", "good qwerty service", "Очень плохо"])
    assert res[0] is None and res[2] is None
    assert res[1] is not None
    fb = TransformerScorer(ModelSettings(name=str(tiny_dirs["3"]), quantize=False, languages=["*"],
                                         device="cpu"), fallback=scorer_for(tiny_dirs["2"], max_unknown_fraction=1.0))
    out = fb.score(["qwerty asdfgh zxcvb"])
    assert out[0] is not None and out[0].model == fb.fallback.model_id


def test_default_languages_come_from_the_model(tiny_dirs):
    sc = TransformerScorer(ModelSettings(name=str(tiny_dirs["3"]), quantize=False, device="cpu"))
    assert sc.languages == {"en"}  # no flarewatch.json: English only
    assert sc.score(["外卖太慢了"])[0] is None and sc.score(["good service"])[0] is not None


def test_bad_model_name():
    with pytest.raises(FileNotFoundError):
        TransformerScorer(ModelSettings(name="./no/such/dir", device="cpu"))


# ----------------------------------------------------------------------------- CLI

def test_score_cli(tiny_dirs, tmp_path):
    from monitor.cli.model import app as model_app  # noqa: F401  (import check)
    from monitor.cli import app

    src = tmp_path / "posts.jsonl"
    lines = [
        json.dumps({"id": 1, "text": "good service"}),
        "{not json",
        json.dumps({"id": 2, "text": "外卖太慢了", "lang": "zh-CN", "extra": [1, 2]}),
        json.dumps({"text": "no id"}),
        "",
        json.dumps({"id": 3, "text": "   "}),
        json.dumps([1, 2]),
        json.dumps({"id": 4, "text": "bad food 😡"}),
    ]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dst = tmp_path / "out" / "scored.jsonl"
    cfg = tmp_path / "daemon.toml"
    cfg.write_text('[model]\nlanguages = ["en", "zh"]\n', encoding="utf-8")
    r = CliRunner().invoke(app, ["score", "--in", str(src), "--out", str(dst), "--model", str(tiny_dirs["3"]),
                                 "--config", str(cfg), "--no-quantize", "--no-progress"])
    assert r.exit_code == 1, r.output
    err = r.stderr if hasattr(r, "stderr") else r.output
    assert ":2:" in err and ":4:" in err and ":7:" in err
    rows = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == [1, 2, 3, 4]
    assert rows[1]["extra"] == [1, 2] and rows[1]["lang"] == "zh"
    for row in (rows[0], rows[1], rows[3]):
        assert row["label"] in ("negative", "neutral", "positive")
        assert -1 <= row["sentiment"] <= 1 and 0 <= row["confidence"] <= 1 and "@" in row["model"]
    assert rows[2]["label"] is None and rows[2]["model"] is None and rows[2]["lang"] == "und"


def test_score_cli_missing_input(tmp_path):
    from monitor.cli import app

    r = CliRunner().invoke(app, ["score", "--in", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2


def test_info_cli(tiny_dirs):
    from monitor.cli import app

    r = CliRunner().invoke(app, ["model", "info", "--model", str(tiny_dirs["5"]), "--json", "--no-quantize"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["labels"]["1 star"] == "negative" and info["labels"]["5 stars"] == "positive"


def test_eval_cli_on_tiny_data(tiny_dirs, tmp_path):
    from monitor.cli import app

    data = tmp_path / "sentiment"
    (data / "tweeteval").mkdir(parents=True)
    (data / "tweeteval" / "val_text.txt").write_text("good service \nawful food \nthe food \n", encoding="utf-8")
    (data / "tweeteval" / "val_labels.txt").write_text("2\n0\n1\n", encoding="utf-8")
    (data / "waimai_10k").mkdir()
    (data / "waimai_10k" / "val.csv").write_text("label,text\n1,很快很好\n0,太慢了\n", encoding="utf-8")
    out = tmp_path / "m.json"
    r = CliRunner().invoke(app, ["model", "eval", "--data", str(data), "--model", str(tiny_dirs["3"]),
                                 "--no-quantize", "--json", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text(encoding="utf-8"))
    assert set(m["datasets"]) == {"tweeteval", "waimai_10k"}
    assert 0 <= m["datasets"]["tweeteval"]["macro_recall"] <= 1
    assert m["datasets"]["waimai_10k"]["n"] == 2 and "zh_combined_accuracy" in m["summary"]
    r = CliRunner().invoke(app, ["model", "eval", "--data", str(tmp_path / "missing")])
    assert r.exit_code == 2
