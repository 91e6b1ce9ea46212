"""What a complaint is about: the words and phrases that rose most among an incident's negative
posts against the brand's usual posts, and a few posts that say it best.

Each post counts a term once (document frequency), so one long rant does not dominate. Terms are
words and two-word phrases; Chinese is segmented with jieba (a dictionary and HMM segmenter), other
scripts split on word boundaries. A term is ranked by the z-score of its smoothed log-odds ratio
(incident posts using it or not, against usual posts using it or not, half a post added to each
cell; the ranking of Monroe, Colaresi and Quinn's "Fightin' Words", 2008): how much more often
incident posts use it than usual posts, allowing for how few posts there are. The brand's own terms, links, mentions,
numbers and common function words are left out.
"""
from __future__ import annotations

import importlib
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from types import ModuleType

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.core.storage.schema import Incident, IncidentPost, Post, Score

PRIOR = 0.5  # pseudo-count per term and side
MIN_POSTS = 2  # a term must appear in at least this many incident posts
BASELINE_DAYS = 14
BASELINE_POSTS = 3000
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#][\w.]+|\d+(?:[.,:]\d+)*")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
STOPWORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before being below between
both but by can can't could did didn't do does doesn't doing don't down during each few for from further had hadn't
has hasn't have haven't having he her here hers herself him himself his how i i'm i've if in into is isn't it it's
its itself just let's me more most my myself no nor not now of off on once only or other our ours ourselves out over
own same she should so some such than that that's the their theirs them themselves then there there's these they
they're this those through to too under until up very was wasn't we we're were weren't what what's when where which
while who whom why will with won't would you you're your yours yourself yourselves also get got still even really
anyone else seeing same here day two heads seriously unbelievable please one any like im
的 了 是 在 我 有 和 就 不 人 都 一 一个 上 也 很 到 说 要 去 你 会 着 没有 看 好 自己 这 那 他 她 它 们 吧 啊 呢 吗 把 被 让 给 还 又
而 但 与 及 或 对 从 为 以 之 于 这个 那个 什么 怎么 因为 所以 如果 已经 可以 就是 真的 还是 太 很多
""".split())


@dataclass(frozen=True)
class Term:
    text: str
    incident_posts: int  # incident negative posts that use it
    usual_share: float  # share of the brand's usual posts that use it
    z: float


@dataclass(frozen=True)
class Themes:
    terms: list[Term]
    post_ids: list[int]  # representative posts, best first
    incident_posts: int
    usual_posts: int

    def words(self) -> list[str]:
        return [t.text for t in self.terms]


@lru_cache(maxsize=1)
def _jieba() -> ModuleType:
    """The jieba module, loaded (and its dictionary built) on first use."""
    jieba = importlib.import_module("jieba")  # typed as the module it is (jieba ships no stubs)
    jieba.setLogLevel(logging.WARNING)
    return jieba


def tokens(text: str, skip: frozenset[str] = frozenset()) -> list[list[str]]:
    """The text's words in runs: a run breaks at a stop word, punctuation or script change, so two-word
    phrases are only formed from words that stand next to each other."""
    runs: list[list[str]] = [[]]
    cleaned = _NOISE.sub(" | ", text.lower())
    pos = 0
    for match in _CJK.finditer(cleaned):
        _latin(cleaned[pos:match.start()], runs, skip)
        runs.append([])
        for word in _jieba().lcut(match.group(), HMM=True):
            if len(word) < 2 or word in STOPWORDS or word in skip:
                runs.append([])
            else:
                runs[-1].append(word)
        runs.append([])
        pos = match.end()
    _latin(cleaned[pos:], runs, skip)
    return [run for run in runs if run]


def _latin(text: str, runs: list[list[str]], skip: frozenset[str]) -> None:
    last = 0
    for match in _WORD.finditer(text):
        if re.search(r"[^\w\s'’]", text[last:match.start()]):  # punctuation between words breaks a phrase
            runs.append([])
        last = match.end()
        word = match.group().replace("’", "'")
        if word.endswith("'s"):
            word = word[:-2]
        if len(word) < 2 or word in STOPWORDS or word in skip:
            runs.append([])
        else:
            runs[-1].append(word)


def _join(a: str, b: str) -> str:
    return a + b if _CJK.fullmatch(a) and _CJK.fullmatch(b) else f"{a} {b}"


def terms_of(text: str, skip: frozenset[str] = frozenset()) -> set[str]:
    """The words and two-word phrases of one post (each counted once)."""
    found: set[str] = set()
    for run in tokens(text, skip):
        found.update(run)
        found.update(_join(a, b) for a, b in zip(run, run[1:]))
    return found


def brand_words(terms: Iterable[str]) -> frozenset[str]:
    words: set[str] = set()
    for term in terms:
        for run in tokens(term):
            words.update(run)
        words.add(term.lower())
    return frozenset(words)


def key_terms(incident_texts: Sequence[str], usual_texts: Sequence[str], skip: frozenset[str] = frozenset(),
              limit: int = 6) -> list[Term]:
    """The terms that rose most in `incident_texts` against `usual_texts`, best first."""
    mine = [terms_of(t, skip) for t in incident_texts]
    usual = [terms_of(t, skip) for t in usual_texts]
    df_i, df_u = Counter(t for s in mine for t in s), Counter(t for s in usual for t in s)
    n_i, n_u = len(mine), len(usual)
    scored: list[Term] = []
    for term, y_i in df_i.items():
        if y_i < max(MIN_POSTS, math.ceil(0.05 * n_i)):
            continue
        y_u = df_u.get(term, 0)
        a, b, c, d = y_i + PRIOR, n_i - y_i + PRIOR, y_u + PRIOR, n_u - y_u + PRIOR
        z = (math.log(a / b) - math.log(c / d)) / math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        if z > 1.0:
            scored.append(Term(term, y_i, y_u / n_u if n_u else 0.0, z))
    scored.sort(key=lambda t: (-t.z, -t.incident_posts, t.text))
    chosen: list[Term] = []
    for candidate in scored:  # a word inside a chosen phrase that adds little is left out, and vice versa
        if any(_overlaps(candidate.text, c.text) and candidate.incident_posts <= c.incident_posts * 1.25
               for c in chosen):
            continue
        chosen.append(candidate)
        if len(chosen) == limit:
            break
    return chosen


def _overlaps(a: str, b: str) -> bool:
    return a in b or b in a


def representative(texts: Sequence[tuple[int, str, int]], terms: Sequence[Term], skip: frozenset[str] = frozenset(),
                   count: int = 3) -> list[int]:
    """Posts (id, text, reach) that use the most key terms, no two saying nearly the same words; ties go to reach."""
    weights = {t.text: t.z for t in terms}
    ranked = []
    for post_id, text, reach in texts:
        found = terms_of(text, skip)
        ranked.append((sum(weights.get(t, 0.0) for t in found), reach, -post_id, post_id, found))
    ranked.sort(reverse=True)
    chosen: list[tuple[int, set[str]]] = []
    for score, _, _, post_id, found in ranked:
        if score <= 0:
            break
        if any(len(found & other) / max(1, len(found | other)) > 0.6 for _, other in chosen):
            continue
        chosen.append((post_id, found))
        if len(chosen) == count:
            break
    return [post_id for post_id, _ in chosen]


def incident_themes(session: Session, incident_id: int, brand_terms: Iterable[str] = (), limit: int = 6,
                    count: int = 3) -> Themes | None:
    """Key terms and representative posts of an incident's negative posts (None when it has none)."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    negative = select(Score.post_id).where(Score.label == "negative")
    rows = session.execute(
        select(Post.id, Post.text, Post.author_followers, Post.likes, Post.reposts, Post.replies)
        .join(IncidentPost, IncidentPost.post_id == Post.id)
        .where(IncidentPost.incident_id == incident_id, Post.id.in_(negative), Post.duplicate_of.is_(None))
    ).all()
    if not rows:
        return None
    linked = select(IncidentPost.post_id).where(IncidentPost.incident_id == incident_id)
    since = incident.started_at - timedelta(days=BASELINE_DAYS)
    usual = list(session.scalars(
        select(Post.text).where(Post.brand == incident.brand, Post.created_at >= since,
                                Post.created_at < incident.started_at, Post.id.not_in(linked),
                                Post.duplicate_of.is_(None))
        .order_by(Post.created_at.desc()).limit(BASELINE_POSTS)))
    skip = brand_words([incident.brand, *brand_terms])
    terms = key_terms([r.text for r in rows], usual, skip, limit)
    reach = [(r.id, r.text, (r.author_followers or 0) + (r.likes or 0) + (r.reposts or 0) + (r.replies or 0))
             for r in rows]
    return Themes(terms, representative(reach, terms, skip, count), len(rows), len(usual))
