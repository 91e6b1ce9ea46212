"""Cheap, offline language identification for routing posts to a model.

It is a heuristic and does not use a model. Posts are short, and the only question that matters is whether
the scorer is trusted for this text. So:

* Non-Latin scripts are decided by the script itself: Han without kana is ``zh``, kana is
  ``ja``, Hangul is ``ko``, Cyrillic is ``ru`` (``uk``/``sr``/``be`` when their own letters show up),
  Arabic script is ``ar`` (``fa``/``ur``), and so on. The script with the most letters wins.
  A Latin letter counts a third as much as a Han/kana/Hangul character, since one such
  character carries about as much as a short word.
* Latin script: function words and telltale letters of about 15 languages are counted.
  English wins ties. Latin text with no evidence for any of them is taken to be English,
  because that is what the bundled model is trained on and what most such posts are.
* Text with no letters at all (empty, whitespace, emoji, numbers, URLs only) is ``und``.

The source's own language tag, when there is one, always wins over this guess (see
``normalize_lang``).
"""
from __future__ import annotations

import re
from collections import Counter

UNDETERMINED = "und"

# (first, last, script) codepoint ranges, checked in order.
_RANGES: list[tuple[int, int, str]] = [
    (0x0041, 0x005A, "latin"), (0x0061, 0x007A, "latin"), (0x00C0, 0x024F, "latin"),
    (0x1E00, 0x1EFF, "latin"),
    (0x0370, 0x03FF, "greek"), (0x1F00, 0x1FFF, "greek"),
    (0x0400, 0x052F, "cyrillic"),
    (0x0530, 0x058F, "armenian"),
    (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"), (0x0750, 0x077F, "arabic"), (0xFB50, 0xFDFF, "arabic"), (0xFE70, 0xFEFF, "arabic"),
    (0x0900, 0x097F, "devanagari"), (0x0980, 0x09FF, "bengali"), (0x0A00, 0x0A7F, "gurmukhi"),
    (0x0A80, 0x0AFF, "gujarati"), (0x0B00, 0x0B7F, "oriya"), (0x0B80, 0x0BFF, "tamil"),
    (0x0C00, 0x0C7F, "telugu"), (0x0C80, 0x0CFF, "kannada"), (0x0D00, 0x0D7F, "malayalam"),
    (0x0D80, 0x0DFF, "sinhala"), (0x0E00, 0x0E7F, "thai"), (0x0E80, 0x0EFF, "lao"),
    (0x0F00, 0x0FFF, "tibetan"), (0x1000, 0x109F, "myanmar"), (0x10A0, 0x10FF, "georgian"),
    (0x1100, 0x11FF, "hangul"), (0x1200, 0x139F, "ethiopic"), (0x1780, 0x17FF, "khmer"),
    (0x3040, 0x309F, "kana"), (0x30A0, 0x30FF, "kana"), (0x31F0, 0x31FF, "kana"), (0xFF66, 0xFF9D, "kana"),
    (0x3130, 0x318F, "hangul"), (0xAC00, 0xD7AF, "hangul"),
    (0x3400, 0x4DBF, "han"), (0x4E00, 0x9FFF, "han"), (0xF900, 0xFAFF, "han"), (0x20000, 0x2FA1F, "han"),
]
_SCRIPT_LANG = {
    "greek": "el", "armenian": "hy", "hebrew": "he", "devanagari": "hi", "bengali": "bn",
    "gurmukhi": "pa", "gujarati": "gu", "oriya": "or", "tamil": "ta", "telugu": "te", "kannada": "kn",
    "malayalam": "ml", "sinhala": "si", "thai": "th", "lao": "lo", "tibetan": "bo", "myanmar": "my",
    "georgian": "ka", "hangul": "ko", "ethiopic": "am", "khmer": "km", "kana": "ja", "han": "zh",
}
_WIDE = {"han", "kana", "hangul"}  # one character is about one word


def _script(ch: str) -> str | None:
    o = ord(ch)
    if o < 0x41:
        return None
    for lo, hi, name in _RANGES:
        if lo <= o <= hi:
            return name
    return None


_W = lambda s: frozenset(s.split())  # noqa: E731
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": _W("the and is are was were to of in for on with at by this that it you i my me we they he she "
             "be been have has had not but or so if just what when will can do don't dont i'm im it's "
             "its get got all about from your you're like love good great today tomorrow new day time out "
             "up how why who would should could there their them our us his her than then too very really "
             "one more know think want going see now last night happy thanks thank best never ever still "
             "people back after before because only also some any lol omg amazing hate bad u ur"),
    "es": _W("el los las una del por para con que es está están pero muy más como cuando porque también "
             "hoy mañana gracias estoy eres somos tengo hay yo tú usted nosotros ellos esto eso ese esta "
             "este qué quién bien mal bueno nada todo todos siempre nunca ya sí dónde ahora mucho"),
    "pt": _W("o os as um uma do da dos das em no na nos nas por para com que é está são mas muito mais "
             "como quando porque também hoje amanhã obrigado obrigada estou você vocês eu ele ela eles isso "
             "isto esse essa não sim bem mal bom boa nada tudo sempre nunca já onde agora"),
    "fr": _W("le la les un une des du au aux et est sont mais très plus comme quand parce aussi "
             "aujourd'hui demain merci je tu il elle nous vous ils elles ce cette ces c'est pas oui non "
             "bien mal bon bonne rien tout tous toujours jamais déjà où maintenant avec pour dans sur qui"),
    "de": _W("der die das den dem des ein eine einen und ist sind aber sehr mehr wie wenn weil auch "
             "heute morgen danke ich du er sie wir ihr nicht ja nein gut schlecht nichts alles immer nie "
             "schon wo jetzt mit für auf von zu im bei noch"),
    "it": _W("il lo la gli le un uno una del della dei e è sono ma molto più come quando perché anche "
             "oggi domani grazie io tu lui lei noi voi loro questo questa quello non sì bene male buono "
             "niente tutto sempre mai già dove adesso ora con per che di"),
    "nl": _W("de het een en is zijn maar heel meer als wanneer omdat ook vandaag morgen dank bedankt "
             "ik jij je hij zij wij jullie niet ja nee goed slecht niets alles altijd nooit al waar nu "
             "met voor op van te dat die dit"),
    "id": _W("yang dan di ini itu tidak saya aku ada dengan untuk ke dari akan sudah juga bisa kamu kita "
             "mereka dia apa ya tapi karena sangat lagi banget gak nggak"),
    "tl": _W("ang ng mga sa ako ko hindi na ka siya ikaw kami tayo sila naman lang talaga po salamat"),
    "tr": _W("ve bir bu da de ile için çok ama gibi daha ben sen biz siz onlar değil evet hayır var yok "
             "ne nasıl neden şimdi bugün yarın teşekkürler"),
    "pl": _W("i w na z nie że się jest to jak ale co tak dla po od być jestem bardzo już tylko dzisiaj "
             "jutro dziękuję"),
    "sv": _W("och att det är som en ett på för med jag du inte har var till av den om men så"),
    "ro": _W("și în nu este sunt pe cu la de că o un mai dar foarte pentru acest această"),
    "vi": _W("và là của có không những được người trong này cho một các với đã"),
    "sw": _W("na ya wa kwa ni la za katika hii huyo sana lakini"),
}
_LETTER_HINTS: dict[str, str] = {
    "ñ": "es", "¿": "es", "¡": "es", "ã": "pt", "õ": "pt", "ß": "de", "ğ": "tr", "ş": "tr", "ı": "tr",
    "ł": "pl", "ą": "pl", "ę": "pl", "ś": "pl", "ź": "pl", "ż": "pl", "ő": "hu", "ű": "hu",
    "ș": "ro", "ț": "ro", "ă": "ro", "œ": "fr", "ư": "vi", "ơ": "vi", "đ": "vi", "å": "sv",
}
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_STRIP_RE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+", re.UNICODE)


def _latin_language(text: str) -> str:
    words = _WORD_RE.findall(text.lower())
    scores: Counter[str] = Counter()
    for w in words:
        for lang, sw in _STOPWORDS.items():
            if w in sw:
                scores[lang] += 1
    lowered = text.lower()
    for ch, lang in _LETTER_HINTS.items():
        if ch in lowered:
            scores[lang] += 2
    if not scores:
        return "en"
    best = max(scores.values())
    if scores.get("en", 0) >= best:
        return "en"
    return min((lang for lang, v in scores.items() if v == best))


def detect_language(text: str) -> str:
    """ISO 639-1 code (or ``und``) for ``text``."""
    body = _STRIP_RE.sub(" ", text)
    counts: Counter[str] = Counter()
    for ch in body:
        s = _script(ch)
        if s is not None:
            counts[s] += 1
    if not counts:
        return UNDETERMINED
    weighted = {s: (n if s in _WIDE else n / 3.0) for s, n in counts.items()}
    # Japanese mixes kanji with kana: any real amount of kana makes Han text Japanese.
    if counts.get("kana", 0) and counts["kana"] >= 0.1 * counts.get("han", 0):
        weighted["kana"] = weighted.get("kana", 0) + weighted.pop("han", 0)
    script = max(sorted(weighted), key=weighted.__getitem__)
    if script == "latin":
        return _latin_language(body)
    if script == "cyrillic":
        if re.search("[іїєґ]", body, re.I):
            return "uk"
        if re.search("[ђћџљњ]", body, re.I):
            return "sr"
        if re.search("[ў]", body, re.I):
            return "be"
        return "ru"
    if script == "arabic":
        if re.search("[ٹڈڑںےھ]", body):
            return "ur"
        if re.search("[پچژگکی]", body):
            return "fa"
        return "ar"
    return _SCRIPT_LANG.get(script, UNDETERMINED)


_ALIASES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "fil": "tl", "zho": "zh", "chi": "zh",
            "eng": "en", "jpn": "ja", "kor": "ko", "cmn": "zh", "yue": "zh", "wuu": "zh"}


def normalize_lang(code: str | None) -> str | None:
    """Normalise a source-provided tag (``en-US``, ``zh_Hant_TW``, ``iw``) to its primary
    ISO 639-1 subtag. Returns None for missing or undetermined tags (``und``, ``zxx``,
    X's ``qme``/``qht``/...), so that the caller detects the language itself."""
    if not code:
        return None
    primary = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    primary = _ALIASES.get(primary, primary)
    if not primary or primary in ("und", "zxx", "mul", "mis") or primary.startswith("q") and len(primary) == 3:
        return None
    if not primary.isalpha() or len(primary) > 3:
        return None
    return primary
