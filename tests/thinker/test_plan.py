from mio.core.frames import Emotion
from mio.thinker.plan import annotate, clean_spoken, split_clauses


def clauses(text: str, piece: int = 3):
    pieces = [text[i : i + piece] for i in range(0, len(text), piece)]
    return list(split_clauses(pieces))


def test_first_clause_is_cut_early_at_a_comma_later_ones_need_more_words():
    out = clauses("Oh hello, nice to meet you. I love the sea, and the stars at night, truly.")
    assert [c for c, _ in out] == ["Oh hello,", "nice to meet you.", "I love the sea, and the stars at night,", "truly."]
    assert out[-1][1] is True and not any(tail for _, tail in out[:-1])


def test_long_runs_without_punctuation_are_cut_and_tail_is_flagged():
    words = " ".join(f"w{i}" for i in range(30))
    out = clauses(words)
    assert len(out) >= 2 and all(len(c.split()) <= 16 for c, _ in out)
    assert " ".join(c for c, _ in out) == words


def test_inline_tags_set_emotion_gesture_and_are_not_spoken():
    c = annotate("[emotion: sad] [gesture: bow] I am sorry to hear that.", Emotion("happy", 0.4))
    assert c.text == "I am sorry to hear that." and c.emotion.label == "sad" and c.gesture == "bow"


def test_lexicon_fills_emotion_and_gesture_when_untagged():
    d = Emotion("neutral", 0.5)
    assert annotate("Hello there!", d).gesture == "wave"
    assert annotate("Hello there!", d).emotion.label == "happy"
    assert annotate("Yes, exactly.", d).gesture == "nod"
    assert annotate("What do you see?", d).emotion.label == "curious"
    assert annotate("The ship sails on the quiet water tonight.", d).gesture == "beat"
    assert annotate("Ok.", d).gesture is None


def test_clean_spoken_removes_markup_and_stage_directions():
    assert clean_spoken("**Hi** (smiles) there 😀 `x`") == "Hi there x"
