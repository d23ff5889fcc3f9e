"""Text for the Talker: clean-up, clause splitting, word tokens and pronunciations (ARPABET).

Everything here is cheap and offline:

- `clean_text`      validates one clause and normalises its whitespace/control characters.
- `split_clauses`   cuts a reply into clauses the TTS can speak one at a time (streaming).
- `word_tokens`     the words of a clause as the aligner and the face see them.
- `Lexicon`         word -> ARPABET phones: CMUdict (shipped in the `pocketsphinx` wheel), then
                    espeak-ng's IPA mapped to ARPABET for unknown words and numbers, then a
                    letter-rule guess so that every word gets *some* phones.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

from mio.core.errors import InputError
from mio.core.shared import Shared

MAX_CLAUSE_CHARS = 1000  # one synthesize() call; the Thinker streams short clauses, so this is generous

# The 39 CMUdict / pocketsphinx phones (no stress digits) plus the silence phone.
ARPABET: frozenset[str] = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH SIL".split()
)

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACE = re.compile(r"\s+")
# A word: letters/digits, inner apostrophes ("don't", "Nemo's") and inner dots/commas in numbers ("3.5", "1,250").
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*(?:[.,]\d+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’)\]]*\s+")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:—–])\s+")


def clean_text(text: object, max_chars: int = MAX_CLAUSE_CHARS) -> str:
    """One clause, ready for a TTS engine: NFC, no control characters, single spaces.

    Raises InputError for non-strings, empty or unspeakable text (no letter or digit), and text
    longer than `max_chars` (refused, not truncated: the caller should split it into clauses).
    """
    if not isinstance(text, str):
        raise InputError(f"text to speak must be a str, got {type(text).__name__}")
    cleaned = _SPACE.sub(" ", _CONTROL.sub(" ", unicodedata.normalize("NFC", text))).strip()
    if not cleaned:
        raise InputError("text to speak is empty")
    if len(cleaned) > max_chars:
        raise InputError(
            f"text to speak is {len(cleaned)} characters; the limit per clause is {max_chars} "
            "(split it with mio.talker.text.split_clauses)"
        )
    if not any(ch.isalnum() for ch in cleaned):
        raise InputError(f"text to speak has no letters or digits: {cleaned[:40]!r}")
    return cleaned


def split_clauses(text: str, max_chars: int = 160) -> list[str]:
    """Sentences, and long sentences cut at clause punctuation (then at spaces) to <= max_chars.

    Streaming TTS speaks the first clause while the rest are still being written, so short first
    clauses lower the time to first audio.
    """
    text = _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    out: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        if len(sentence) <= max_chars:
            out.append(sentence)
            continue
        pieces = [p for part in _CLAUSE_BREAK.split(sentence) for p in _pack(part.split(" "), max_chars)]
        out.extend(_pack(pieces, max_chars))  # clauses joined again while they fit
    return [c for c in out if any(ch.isalnum() for ch in c)]


def _pack(items: list[str], width: int) -> list[str]:
    """Greedy packing: items joined by spaces into lines of <= width (a longer item stands alone)."""
    lines, line = [], ""
    for w in items:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    if line:
        lines.append(line)
    return lines


def word_tokens(text: str) -> list[str]:
    """Speakable words in reading order ("Don't panic, it's 3.5 km!" -> Don't, panic, it's, 3.5, km)."""
    return [m.group(0).replace("’", "'") for m in _WORD.finditer(text)]


def sentence_final_words(text: str) -> list[bool]:
    """For each word of `word_tokens(text)`: is it followed by sentence-final punctuation?"""
    flags = []
    for m in _WORD.finditer(text):
        tail = text[m.end() : m.end() + 3]
        flags.append(bool(re.match(r"[\"”’)\]]*[.!?…]", tail)))
    return flags


# ---------------------------------------------------------------- IPA -> ARPABET

# Longest match first. Covers espeak-ng's en-us IPA and misaki's alphabet (hibari's G2P), whose
# single letters A I O W Y Q stand for diphthongs and ᵊ for a reduced schwa.
# fmt: off
_IPA_TABLE: dict[str, tuple[str, ...]] = {
    "tʃ": ("CH",), "dʒ": ("JH",), "ʧ": ("CH",), "ʤ": ("JH",),
    "aɪ": ("AY",), "aʊ": ("AW",), "eɪ": ("EY",), "oʊ": ("OW",), "əʊ": ("OW",), "ɔɪ": ("OY",),
    "ɜːɹ": ("ER",), "ɜɹ": ("ER",), "ɚɹ": ("ER",), "ɝ": ("ER",), "ɚ": ("ER",), "ɜ": ("ER",),
    "A": ("EY",), "I": ("AY",), "O": ("OW",), "Q": ("OW",), "W": ("AW",), "Y": ("OY",),
    "ɑ": ("AA",), "ɒ": ("AA",), "æ": ("AE",), "a": ("AE",), "ʌ": ("AH",), "ə": ("AH",), "ɐ": ("AH",),
    "ᵊ": ("AH",), "ɛ": ("EH",), "e": ("EH",), "ɪ": ("IH",), "ᵻ": ("IH",), "i": ("IY",), "ʊ": ("UH",),
    "u": ("UW",), "ɔ": ("AO",), "o": ("OW",),
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "ɡ": ("G",), "g": ("G",),
    "f": ("F",), "v": ("V",), "θ": ("TH",), "ð": ("DH",), "s": ("S",), "z": ("Z",), "ʃ": ("SH",),
    "ʒ": ("ZH",), "h": ("HH",), "x": ("HH",), "ç": ("HH",), "m": ("M",), "n": ("N",), "ŋ": ("NG",),
    "l": ("L",), "ɫ": ("L",), "ɹ": ("R",), "r": ("R",), "ɾ": ("T",), "w": ("W",), "j": ("Y",),
}
_IPA_KEYS = sorted(_IPA_TABLE, key=len, reverse=True)
# fmt: on


def ipa_to_arpabet(ipa: str) -> list[str]:
    """Map an IPA (espeak-ng) or misaki phoneme string to ARPABET phones; unknown marks are skipped."""
    out: list[str] = []
    i = 0
    s = ipa.replace("ː", "").replace("ˈ", "").replace("ˌ", "").replace("\u0329", "").replace("\u0361", "")
    s = s.replace("ɜɹ", "ɜ").replace("ɚɹ", "ɚ")
    while i < len(s):
        for key in _IPA_KEYS:
            if s.startswith(key, i):
                out.extend(_IPA_TABLE[key])
                i += len(key)
                break
        else:
            i += 1  # stress, length, spaces, punctuation, glottal stop...
    return out


# fmt: off
_LETTER_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tch", ("CH",)), ("sch", ("SH",)), ("th", ("TH",)), ("sh", ("SH",)), ("ch", ("CH",)),
    ("ph", ("F",)), ("ng", ("NG",)), ("ck", ("K",)), ("qu", ("K", "W")), ("wh", ("W",)),
    ("ee", ("IY",)), ("ea", ("IY",)), ("oo", ("UW",)), ("ou", ("AW",)), ("ow", ("OW",)),
    ("ai", ("EY",)), ("ay", ("EY",)), ("oi", ("OY",)), ("oy", ("OY",)), ("au", ("AO",)),
    ("a", ("AE",)), ("e", ("EH",)), ("i", ("IH",)), ("o", ("AA",)), ("u", ("AH",)), ("y", ("IY",)),
    ("b", ("B",)), ("c", ("K",)), ("d", ("D",)), ("f", ("F",)), ("g", ("G",)), ("h", ("HH",)),
    ("j", ("JH",)), ("k", ("K",)), ("l", ("L",)), ("m", ("M",)), ("n", ("N",)), ("p", ("P",)),
    ("q", ("K",)), ("r", ("R",)), ("s", ("S",)), ("t", ("T",)), ("v", ("V",)), ("w", ("W",)),
    ("x", ("K", "S")), ("z", ("Z",)),
)
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# fmt: on


def letters_to_arpabet(word: str) -> list[str]:
    """A crude spelling-based guess, used only when neither CMUdict nor espeak-ng knows the word."""
    w = word.lower()
    out: list[str] = []
    i = 0
    while i < len(w):
        if w[i].isdigit():
            out.extend(letters_to_arpabet(_DIGITS[int(w[i])]))
            i += 1
            continue
        for key, phones in _LETTER_RULES:
            if w.startswith(key, i):
                # a final silent "e" after a consonant ("make") adds nothing
                if key == "e" and i == len(w) - 1 and len(w) > 2:
                    pass
                else:
                    out.extend(phones)
                i += len(key)
                break
        else:
            i += 1
    return out


@functools.lru_cache(maxsize=1)
def espeak_binary() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


@functools.lru_cache(maxsize=4096)
def espeak_ipa(word: str, voice: str = "en-us") -> str:
    """espeak-ng's IPA for one word or number ("2024" -> "tˈuː θˈaʊzənd twˈɛnti fˈoːɹ"); '' if unavailable."""
    exe = espeak_binary()
    if exe is None:
        return ""
    try:
        res = subprocess.run(
            [exe, "-q", "--ipa", "-v", voice, "--", word],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout.strip() if res.returncode == 0 else ""


def cmudict_path() -> Path | None:
    """The CMU pronouncing dictionary that ships inside the `pocketsphinx` wheel (found without importing it)."""
    spec = importlib.util.find_spec("pocketsphinx")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "en-us" / "cmudict-en-us.dict"
    return path if path.is_file() else None


class Lexicon(Shared):
    """word -> ARPABET phones. CMUdict first (135k words), then espeak-ng IPA, then letter rules."""

    def __init__(self, dict_path: Path | None = None) -> None:
        self.entries: dict[str, tuple[str, ...]] = {}
        path = dict_path or cmudict_path()
        if path is not None:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    word, _, phones = line.partition(" ")
                    if "(" in word:  # alternative pronunciations: keep the first
                        continue
                    self.entries[word] = tuple(p.rstrip("012") for p in phones.split())

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.entries

    def phones(self, word: str) -> list[str]:
        """Phones of one word token (never empty for a token with a letter or digit)."""
        w = word.lower().replace("’", "'")
        if w in self.entries:
            return list(self.entries[w])
        phones = ipa_to_arpabet(espeak_ipa(w))
        return phones or letters_to_arpabet(w)
