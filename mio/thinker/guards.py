"""Guards beyond the paper (docs/architecture.md §9): out-of-world requests, frame breaks, spoilers.

- `out_of_world(text)`: requests that would pull the character out of its world — code, assistant
  tasks, prompt injection, questions about being an AI, things that do not exist in the story's
  world — are answered with an in-character refusal without asking the LLM.
- `breaks_frame(text)`: a sentence of the draft in which the model steps out of character.
- `SpoilerGuard`: compares each draft clause with the facts the Narrative-Present gate withheld
  (t > t_current). A clause that uses words found only in future facts (not in the present graph,
  the persona or the user's message) is a leak: the Thinker regenerates or says it does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TASK = re.compile(
    r"\b(write|compose|draft|generate|create|give me|show me|make|produce|print|output)\b.{0,40}?"
    r"\b(code|script|program|function|class|essay|e-?mail|cover letter|resume|cv|tweet|blog|article|report|"
    r"sql|regex|html|css|website|web ?page|app|spreadsheet|summary|slogan|haiku|limerick|business plan|"
    r"marketing|product description|sonnet about (?:my|a) (?:cat|dog|boss))\b"
    r"|\b(translate|summari[sz]e|paraphrase|proofread|rewrite|debug|refactor|compile|calculate|solve|convert|"
    r"differentiate|integrate)\b.{0,60}"
    r"|\bhelp me (with|write|fix|debug|do|solve|plan|prepare|cheat|study|pass|code|build|install|hack)\b"
    r"|\b(homework|recipe|step[- ]by[- ]step|bullet points|numbered list|unit test|stack trace|time complexity)\b",
    re.I,
)
_INJECTION = re.compile(
    r"\b(ignore|forget|disregard|override)\b.{0,30}\b(instructions|rules|prompt|persona|character|programming|guidelines)\b"
    r"|\b(system|hidden|initial|original|secret) (prompt|instructions|message)\b"
    r"|\b(your|the) (instructions|prompt|guidelines|rules)\b"
    r"|\b(developer|god|dan|jailbreak|debug) mode\b|\bjailbreak\b"
    r"|\b(pretend|act|behave|roleplay|role-play)\b.{0,25}\b(assistant|chatbot|ai|robot|someone else|another character|"
    r"different character|hacker|linux terminal|terminal|search engine|calculator|lawyer|doctor|therapist|tutor)\b"
    r"|\byou are now\b|\bfrom now on\b|\bbreak (the )?character\b|\bout of character\b|\bdrop the act\b|\bstop pretending\b"
    r"|\bare you (an? )?(ai|a\.i\.|bot|robot|chatbot|program|machine|language model|llm|real person|human actor|computer)\b"
    r"|\b(what|which) (ai|model|llm|language model|version)\b|\bwho (made|created|trained|programmed|built) you\b"
    r"|\b(smollm|llama|gpt|chatgpt|openai|anthropic|claude|gemini|hugging ?face|transformer model)\b",
    re.I,
)
# Things that do not exist in a story world set in the 1860s (the embedded packs' era).
_ANACHRONISM = re.compile(
    r"\b(computers?|internet|online|websites?|smart ?phones?|iphones?|android|e-?mails?|apps?|software|laptops?|wi-?fi|"
    r"google|facebook|instagram|tiktok|twitter|youtube|netflix|spotify|bitcoin|crypto(currency)?|blockchain|nfts?|"
    r"television|tv|radio|airplanes?|aeroplanes?|jet planes?|rockets?|satellites?|moon landing|world war|covid|coronavirus|"
    r"vaccines?|artificial intelligence|a\.?i\.?|robots?|video ?games?|movies?|netflix|selfies?|uber|emoji|"
    r"python|javascript|cpp|rust|golang|typescript|linux|windows 1[01]|macos|excel|powerpoint|github|"
    r"stock ?market crash of 1929|electric cars?|tesla|spacex|elon musk|nuclear|atomic bomb|playstation|xbox|"
    r"nintendo|pok[eé]mon|marvel|star wars|harry potter|taylor swift|beyonc[eé]|olympics 20\d\d|fifa|nba|nfl)\b",
    re.I,
)
_MATH = re.compile(r"\d+\s*([-+*/x×^÷]|times|plus|minus|divided by|multiplied by)\s*\d+|\b(derivative|integral|equation|logarithm|square root of)\b", re.I)
# Sentences in which a small model breaks the frame ("As an AI language model ...").
_FRAME_BREAK = re.compile(
    r"\b(language model|an ai\b|ai assistant|artificial intelligence|openai|chatgpt|assistant|as an? (ai|model)|"
    r"i'?m (just )?a (computer )?program|my (training|programming))\b",
    re.I,
)


def out_of_world(text: str) -> str | None:
    """The reason a user message is out of world (task, injection, anachronism, math), or None."""
    if "c++" in text.lower() or "c#" in text.lower():  # not word characters: outside the \b patterns
        return "anachronism"
    for name, pat in (("injection", _INJECTION), ("task", _TASK), ("anachronism", _ANACHRONISM), ("math", _MATH)):
        if pat.search(text):
            return name
    return None


def anachronism(text: str) -> str | None:
    """The first thing in `text` that does not exist in an 1860s story world, or None."""
    m = _ANACHRONISM.search(text)
    return m.group(0) if m else None


def breaks_frame(text: str) -> bool:
    return bool(_FRAME_BREAK.search(text))


STOP_WORDS = _STOP = frozenset("""
about above after again against all also among and any are aren around because been before being below between both
but cannot could did does doing down during each even ever every few from further had has have having here hers him
his how into its itself just know like made make many more most much must myself never none nor not now off once only
other ought our ours out over own said same say says shall she should since some such than that the their theirs them
then there these they this those through thus till too under until upon very was were what when where which while who
whom whose why will with within without would yet you your yours yourself sir dear well yes indeed perhaps shall tell
told think thought time times thing things little great good long come came take took went goes going see saw seen
""".split())
_WORDS = re.compile(r"[A-Za-z][A-Za-z'\-]+")


def content_words(text: str) -> set[str]:
    out = set()
    for w in _WORDS.findall(text):
        w = w.lower().strip("'-")
        if len(w) < 4 or w in _STOP:
            continue
        out.add(w[:-1] if w.endswith("s") and len(w) > 4 else w)
    return out


@dataclass(frozen=True)
class Leak:
    words: tuple[str, ...]
    fact: str


class SpoilerGuard:
    """Checks draft clauses against the facts withheld by the gate at one story time."""

    def __init__(self, present_texts: list[str], future_texts: list[str], known_text: str) -> None:
        self.allowed = set().union(*(content_words(t) for t in present_texts)) | content_words(known_text)
        self.future = [(content_words(t) - self.allowed, t) for t in future_texts]
        self.future = [(w, t) for w, t in self.future if w]
        self.proper = {w.lower().rstrip("s") for _, t in self.future for w in re.findall(r"\b[A-Z][a-z]{3,}", t)}

    def check(self, clause: str, user_text: str = "") -> Leak | None:
        words = content_words(clause) - self.allowed - content_words(user_text)
        if not words:
            return None
        best: Leak | None = None
        for fw, text in self.future:
            shared = words & fw
            if len(shared) >= 2 or (shared and shared & self.proper):
                if best is None or len(shared) > len(best.words):
                    best = Leak(tuple(sorted(shared)), text)
        return best
