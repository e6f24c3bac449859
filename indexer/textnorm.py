"""Text normalisation shared by indexing and search.

Script text and recognised speech are brought to one canonical form so they can be compared word by
word: lower case, no punctuation, contractions and colloquial forms expanded ("gonna" -> "going to",
"you're" -> "you are"), numbers spelled out ("3" -> "three", "1999" -> "nineteen ninety nine").
Each normalised token remembers which source word it came from, so differences can be shown on the
words the actor actually said. Possessives are not contractions ("Maya's" is "mayas", "it's" is
"it is"), and words of their own are never read as clipped forms ("cause", "Em"). This is the search
normalisation; word error rates use Whisper's own normaliser (scripts/eval_asr.py). A phonetic key per token (Metaphone) lets "Thom"/"Tom" or recogniser
spellings of names still meet.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_SPLIT = re.compile(r"[\s\u2014\u2013/]+|(?<!\d)-|-(?!\d)|\.\.\.|\u2026")
_STRIP = re.compile(r"^[^\w'$]+|[^\w'%]+$")
_INNER = re.compile(r"[^\w'.,:%$]")
_NUMBER = re.compile(r"^\$?\d[\d,]*(\.\d+)?%?$")

# Colloquial and contracted forms -> what a script would spell out. Applied to both sides.
EXPANSIONS: dict[str, str] = {
    "gonna": "going to", "wanna": "want to", "gotta": "got to", "hafta": "have to", "hasta": "has to",
    "kinda": "kind of", "sorta": "sort of", "lotta": "lot of", "outta": "out of", "lemme": "let me",
    "gimme": "give me", "dunno": "do not know", "ya": "you", "y'all": "you all", "'cause": "because",
    "cuz": "because", "'til": "until", "till": "until", "'em": "them",
    "ok": "okay", "o.k.": "okay", "k": "okay", "alright": "all right", "yeah": "yes", "yep": "yes",
    "yup": "yes", "nope": "no", "nah": "no", "mr": "mister", "mr.": "mister", "mrs": "missus",
    "mrs.": "missus", "dr": "doctor", "dr.": "doctor", "st.": "saint", "vs": "versus", "vs.": "versus",
    "ain't": "is not", "won't": "will not", "can't": "can not", "cannot": "can not", "shan't": "shall not",
    "let's": "let us", "i'm": "i am", "o'clock": "oclock",
}
_SUFFIXES = (("n't", " not"), ("'re", " are"), ("'ve", " have"), ("'ll", " will"), ("'d", " would"),
             ("'m", " am"), ("'s", " is"))
# "'s" is "is" only after these ("it's", "what's"); after a name or a noun it is a possessive ("Maya's"
# stays one word, "mayas"), never "maya is". Likewise "cause" and "em" are words of their own: only the
# clipped forms "'cause" and "'em" stand for "because" and "them".
_S_IS = frozenset("it that what he she there here who where how when why this everything nothing something "
                  "everyone everybody someone somebody nobody one".split())

STOPWORDS = frozenset(
    "a an the and or but if of at by for with about to from in on off up down out over under again "
    "then once here there when where why how all any both each few more most other some such no nor "
    "not only own same so than too very can will just do does did done be is am are was were been "
    "being have has had having i me my mine we us our ours you your yours he him his she her hers it "
    "its they them their theirs what which who whom this that these those would should could shall "
    "may might must let oh uh um ah hmm well".split()
)


def _number_words(token: str) -> str | None:
    from num2words import num2words

    text = token.replace(",", "").replace("$", "")
    percent = text.endswith("%")
    text = text.rstrip("%")
    try:
        if "." in text:
            words = num2words(float(text))
        else:
            value = int(text)
            words = num2words(value, to="year") if 1100 <= value <= 2099 and len(text) == 4 else num2words(value)
    except (ValueError, OverflowError, NotImplementedError):
        return None
    if percent:
        words += " percent"
    if token.startswith("$"):
        words += " dollars"
    return words.replace("-", " ").replace(",", "")


@lru_cache(maxsize=65536)
def _normalize_word(word: str) -> tuple[str, ...]:
    w = unicodedata.normalize("NFKD", word.translate(_APOSTROPHES).lower())
    w = "".join(c for c in w if not unicodedata.combining(c))
    w = _STRIP.sub("", w)
    if not w:
        return ()
    if w in EXPANSIONS:
        return tuple(EXPANSIONS[w].split())
    if _NUMBER.match(w):
        spelled = _number_words(w)
        if spelled:
            return tuple(spelled.split())
    w = _INNER.sub("", w).replace(".", "").replace(",", "").replace(":", " ").replace("%", " percent")
    out: list[str] = []
    for part in w.split():
        for suffix, repl in _SUFFIXES:
            if part.endswith(suffix) and len(part) > len(suffix):
                if suffix == "'s" and part[:-2] not in _S_IS:
                    repl = "s"                                  # a possessive
                part = part[: -len(suffix)] + repl
                break
        out.extend(p.strip("'") for p in part.split())
    return tuple(t for t in out if t)


def split_words(text: str) -> list[str]:
    """Split text into words the way a transcript shows them (punctuation stays attached)."""
    return [w for w in _SPLIT.split(text.strip()) if w]


def normalize_words(words: list[str]) -> list[tuple[str, int]]:
    """Normalised tokens, each with the index of the source word it came from."""
    out: list[tuple[str, int]] = []
    for i, word in enumerate(words):
        for part in _SPLIT.split(word):
            for tok in _normalize_word(part):
                out.append((tok, i))
    return out


def tokens(text: str) -> list[str]:
    """Normalised tokens of a text."""
    return [t for t, _ in normalize_words(split_words(text))]


@lru_cache(maxsize=65536)
def phonetic(token: str) -> str:
    """Metaphone key; 'th' is keyed like 't' (names like Thom/Tom, and a frequent ASR confusion)."""
    import jellyfish

    if not token or not token[0].isalpha():
        return token
    return jellyfish.metaphone(token).replace("0", "T") or token


def content_tokens(toks: list[str]) -> list[str]:
    """Tokens without stopwords (or all of them when the text is only stopwords)."""
    content = [t for t in toks if t not in STOPWORDS]
    return content or list(toks)
