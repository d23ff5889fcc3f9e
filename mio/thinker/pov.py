"""Point of view: the memory notes a character is given are its own memories, in the first person.

The knowledge graph is written from the narrator's side ("Captain Nemo built the Nautilus in
secret"). Put in front of a small model as it is, the model repeats it as it is, and the captain
speaks of himself as "Captain Nemo" (the third-person replies `mio bench thinker` counts). Written
as "You built ..." it is copied as "you" and turned on the visitor. Written as the character's own
memory ("I built the Nautilus in secret"), copying it is already right.

The rewrite is small and predictable: the speaker's name (with its title, or a given name before
it) becomes "me" where it is an object (after a preposition or a verb: "asked Nemo", "by Captain
Nemo"), "I" elsewhere, and "my" as a possessive; the verb after a subject agrees ("is"
-> "am", "loves" -> "love"); in a sentence that begins with the name and names nobody else (no
other capitalised word), he / his / him / himself follow. Facts about anyone else stay as written.
"""

from __future__ import annotations

import re

from mio.thinker.guards import STOP_WORDS
from mio.thinker.llm.selfname import TITLES, name_words

_IRREGULAR = {"is": "am", "was": "was", "has": "have", "does": "do", "isn't": "am not", "wasn't": "wasn't",
              "hasn't": "haven't", "doesn't": "don't"}
_ADVERBS = r"(?:(?:never|always|often|also|still|once|then|now|only|soon|later|rarely|even|already|alone)\s+)?"
_PRONOUNS = {"he": "I", "his": "my", "him": "me", "himself": "myself"}


def _present_plural(verb: str) -> str:
    """The form of a third-person-singular present verb after "I" ("carries" -> "carry")."""
    low = verb.lower()
    if low in _IRREGULAR:
        return _IRREGULAR[low]
    if not low.endswith("s") or low.endswith(("ss", "us", "is")) or len(low) < 3:
        return verb  # past tense, or not a verb form that changes
    if low.endswith("ies") and len(low) > 4:
        return verb[:-3] + "y"
    if low.endswith(("ches", "shes", "sses", "xes", "oes", "zes")):
        return verb[:-2]
    return verb[:-1]


def _name_pattern(name: str) -> re.Pattern[str]:
    words = name_words(name)
    if not words:
        return re.compile(r"(?!x)x")  # matches nothing
    titles = "|".join(sorted(TITLES))
    core = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    # "Captain Nemo", "Pierre Aronnax", "Ned Land", "Nemo": an optional title, an optional given name,
    # the name word, and the rest of the full name when it follows ("Land" after "Ned").
    rest = [w for w in re.findall(r"[A-Za-z]+", name) if w.lower() not in TITLES and w.lower() not in words]
    tail = "".join(rf"(?:\s+{re.escape(w)})?" for w in rest)
    return re.compile(rf"\b(?:(?i:{titles})\s+)?(?:(?P<given>[A-Z][a-z]+)\s+)?(?i:{core}){tail}\b(?P<poss>'s)?")


# words after which a name is an object ("asked Nemo", "by Captain Nemo"): prepositions, and verbs
_PREPOSITIONS = frozenset("by to with for from of at on about like than upon against without toward towards behind "
                          "beside near under over into onto among between around".split())
_OBJECT_VERBS = frozenset("saw told let made gave left met took found heard kept brought sent showed led begged "
                          "thanked followed joined knew see tell meet keep give find hear".split())


def _takes_object(word: str) -> bool:
    """Whether a name right after `word` is its object (then "me"; else the name is a subject, "I")."""
    low = word.lower()
    return low in _PREPOSITIONS or low in _OBJECT_VERBS or (len(low) > 3 and low.endswith(("ed", "es", "ts", "rs")))


# "to call him Captain Nemo": the name as a name, not as the person
_AS_A_NAME = re.compile(r"\b(call|calls|called|named|name is|name was)(\s+(him|me|himself))?\s*$", re.I)


def first_person(text: str, name: str) -> str:
    """`text` as the memory of the speaker `name`, in the first person (see the module's docstring)."""
    pattern = _name_pattern(name)
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    return " ".join(_sentence(s, pattern) for s in sentences if s)


def _sentence(sentence: str, pattern: re.Pattern[str]) -> str:
    out, pos, subject_first = [], 0, False
    for m in pattern.finditer(sentence):
        start = m.start()
        given = m.group("given")
        prior = re.search(r"([A-Za-z]+)\W*$", sentence[:m.start()])
        if given and (given.lower() in STOP_WORDS | TITLES or (prior and prior.group(1)[0].isupper())):
            # "Then Nemo", "In New York Aronnax": not a given name
            start = m.start("given") + len(given) + 1
            while sentence[start] == " ":
                start += 1
        if _AS_A_NAME.search(sentence[:start]):
            continue
        out.append(sentence[pos:start])
        at_start = not sentence[:start].strip(" \"'")
        subject_first |= at_start
        pos = m.end()
        if m.group("poss"):
            out.append(_cap("my", at_start))
            continue
        verb = re.match(rf"(\s+{_ADVERBS})([A-Za-z']+)", sentence[pos:], re.I)
        before = sentence[:start].rstrip()
        prev = re.search(r"([A-Za-z']+)$", before)
        is_subject = not (prev and _takes_object(prev.group(1))) or bool(verb and verb.group(2).lower() in _IRREGULAR)
        if verb and is_subject:
            out.append("I" + verb.group(1) + _present_plural(verb.group(2)))
            pos += verb.end()
        else:
            out.append("I" if is_subject else "me")
    out.append(sentence[pos:])
    result = "".join(out)
    others = [w for w in re.findall(r"\b[A-Z][a-z']+", result)[1:] if w != "My"]
    if subject_first and not others:  # the sentence is about the speaker alone: so are its pronouns
        result = re.sub(rf"\b(he|his|him|himself)\b(\s+{_ADVERBS}[A-Za-z']+)?", _pronoun, result)
    return result


def _pronoun(m: re.Match[str]) -> str:
    word = m.group(1)
    new = _PRONOUNS[word.lower()]
    if word.lower() == "he" and m.group(2):  # "he never tells" -> "I never tell"
        verb = re.match(rf"(\s+{_ADVERBS})([A-Za-z']+)", m.group(2))
        return new + verb.group(1) + _present_plural(verb.group(2))
    return (new if new == "I" else _cap(new, word[0].isupper())) + (m.group(2) or "")


def _cap(word: str, upper: bool) -> str:
    return word[0].upper() + word[1:] if upper else word
