"""A synthetic post stream for `flarewatch demo`: a quiet brand, a launch, then a growing complaint.

The texts are written for flarewatch (English and Chinese) and recombined with a fixed seed, so
the demo needs no data download and shows the same story every time.
"""
from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from monitor.detection.stats import poisson_sample

BRAND = "Acme"
START = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)

_PRODUCTS = ["the Acme Kettle", "my Acme router", "the Acme app", "Acme Rewards", "the new Acme Buds"]
_TEXTS = {
    ("en", "negative"): [
        "@Acme {p} stopped working after two days. Really disappointed.",
        "Third time I've contacted @Acme support about {p} and still no answer.",
        "Honestly {p} is the worst purchase I've made this year #Acme",
        "Acme charged me twice and nobody replies. Not happy.",
    ],
    ("en", "neutral"): [
        "Does anyone know if {p} works with older phones? @Acme",
        "Acme store on Main Street opens at 9 tomorrow.",
        "Comparing {p} with the alternatives before I buy. #Acme",
        "@Acme what's the warranty period for {p}?",
    ],
    ("en", "positive"): [
        "Loving {p}, setup took two minutes! @Acme",
        "Shout out to Acme support, they fixed my issue in minutes.",
        "{p} is great value, very happy with it #Acme",
        "Best customer service I've had in years, thanks @Acme!",
    ],
    ("zh", "negative"): [
        "Acme的客服太差了，等了一个小时都没人理。",
        "刚买的Acme耳机就坏了，非常失望。",
        "Acme配送太慢了，东西到了还是坏的。",
    ],
    ("zh", "neutral"): [
        "请问Acme的新款什么时候上市？",
        "Acme门店明天几点开门？",
    ],
    ("zh", "positive"): [
        "Acme的新耳机音质很好，推荐！",
        "Acme客服很耐心，问题很快就解决了。",
    ],
}
_CRISIS_SEED = "@Acme your update bricked my router and support hung up on me. Avoid Acme!"
_CRISIS_PARTS = (
    ["Same here:", "Anyone else seeing this?", "Day two and", "@Acme seriously,", "Unbelievable,", "Just a heads up:"],
    ["the Acme update killed my router", "my Acme router is dead after the update",
     "the Acme firmware update bricked our router", "Acme's update took my internet down"],
    ["and support hung up on me.", "and nobody at Acme answers.", "- fix this now!", "and that is unacceptable.",
     "and I have been on hold for three hours.", "and my whole family is offline."],
)
_CRISIS_ZH = ["Acme路由器更新后直接无法使用，客服也不管，太气人了！", "Acme更新把我的路由器搞坏了，打客服没人接。",
              "Acme的更新让全家断网一整天，太差了！"]


def _crisis_text(rng: random.Random) -> str:
    """A new complaint each time: people describe the same failure in their own words."""
    if rng.random() < 0.15:
        return rng.choice(_CRISIS_ZH)
    opener, failure, rest = (rng.choice(part) for part in _CRISIS_PARTS)
    if opener.endswith("?"):  # a new sentence starts after a question
        failure = failure[0].upper() + failure[1:]
    return f"{opener} {failure} {rest}"


def _pick(rng: random.Random, lang: str, label: str) -> str:
    return rng.choice(_TEXTS[(lang, label)]).format(p=rng.choice(_PRODUCTS))


def _background_rate(t: datetime) -> float:
    """Posts per hour: a daytime peak around 15:00 UTC and a quiet night."""
    return 12 * (0.25 + 0.75 * (0.5 + 0.5 * math.cos((t.hour + t.minute / 60 - 15) / 24 * 2 * math.pi)))


def crisis_start(days: float = 2.0) -> datetime:
    """When the injected complaint begins: 16:00 UTC on the last simulated day."""
    return START + timedelta(days=math.ceil(days) - 1, hours=16)


def generate(days: float = 2.0, seed: int = 7) -> Iterator[dict[str, object]]:
    """Yield posts in time order, in the JSONL replay shape (id, source, created_at, author, ...)."""
    rng = random.Random(seed)
    end = START + timedelta(days=days)
    last_day = START + timedelta(days=math.ceil(days) - 1)
    launch = (last_day + timedelta(hours=10), last_day + timedelta(hours=12))
    crisis_at = crisis_start(days)
    crisis_end = crisis_at + timedelta(hours=3)
    t, n = START, 0
    while True:
        t += timedelta(minutes=1)
        if t >= end:
            return
        events: list[tuple[str, str, str | None]] = []
        rate = _background_rate(t)
        if launch[0] <= t < launch[1]:
            rate += 60  # a product launch: loud but happy
        for _ in range(poisson_sample(rng, rate / 60)):
            lang = "zh" if rng.random() < 0.25 else "en"
            label = rng.choices(["negative", "neutral", "positive"], [0.15, 0.45, 0.4])[0]
            if launch[0] <= t < launch[1]:
                label = rng.choice(["neutral", "positive", "positive"])
            events.append((lang, label, None))
        if crisis_at <= t < crisis_end:
            minutes = (t - crisis_at).total_seconds() / 60
            crisis_rate = min(3 * 2 ** (minutes / 25), 240)  # per hour, doubling every 25 minutes
            for _ in range(poisson_sample(rng, crisis_rate / 60)):
                complaint = _CRISIS_SEED if rng.random() < 0.2 else _crisis_text(rng)
                events.append(("zh" if complaint in _CRISIS_ZH else "en", "negative", complaint))
        for lang, label, text in events:
            n += 1
            created = t + timedelta(seconds=rng.uniform(0, 59))
            followers = int(rng.paretovariate(1.2) * 40)
            reposts = rng.randrange(3)
            if text == _CRISIS_SEED:  # the complaint comes from a well-followed account and spreads
                followers, reposts = 48_000, rng.randrange(5, 30)
            yield {
                "id": f"demo-{n:06d}", "source": "demo", "created_at": created.isoformat().replace("+00:00", "Z"),
                "author": f"user{rng.randrange(10**6):06d}", "author_followers": followers,
                "text": text or _pick(rng, lang, label), "lang": lang,
                "likes": rng.randrange(5), "reposts": reposts, "replies": rng.randrange(3),
                "url": f"https://social.example/acme/{n}",
            }
