from mio.core.frames import Emotion
from mio.thinker.plan import annotate, clean_spoken, split_clauses


def clauses(text: str, piece: int = 3):
    pieces = [text[i : i + piece] for i in range(0, len(text), piece)]
    return list(split_clauses(pieces))


def test_first_clause_is_cut_early_at_a_comma_later_ones_need_more_words():
    out = clauses("Oh hello, nice to meet you. I love the sea, and the stars at night, truly.")
    assert [c for c, _ in out] == ["Oh hello,", "nice to meet you.", "I love the sea, and the stars at night,", "truly."]
    assert out[-1][1] is True and not any(tail for _, tail in out[:-1])
    # one word is enough for the first clause: "Yes," is spoken while the rest is written
    assert [c for c, _ in clauses("Yes, Ned Land is aboard, sir.")] == [
        "Yes,", "Ned Land is aboard, sir."]


def test_a_long_first_sentence_is_cut_before_a_new_phrase():
    """No mark after five words: the first clause ends before the next "and", "which", "of", ...;
    short sentences, later clauses and quoted speech are not cut that way."""
    assert [c for c, _ in clauses("The Nautilus is a submarine vessel designed and built by me in secret. It is mine.")] == [
        "The Nautilus is a submarine vessel designed", "and built by me in secret.", "It is mine."]
    assert [c for c, _ in clauses("The sea is everything to me. I love it and I stay in it with my men.")] == [
        "The sea is everything to me.", "I love it and I stay in it with my men."]
    assert [c for c, _ in clauses('"We are all bound to the sea and its depths," he said.')][0].startswith('"We are all bound to the sea and')


def test_first_sentence_ends_when_its_mark_arrives_not_one_token_later():
    """Token by token: the first clause is out as soon as its "." arrives (no waiting for the next
    word), but not after an abbreviation or a number; what follows an early cut is not lost."""
    def stream(tokens):
        out, seen = [], []
        for clause, _ in split_clauses(_feed(tokens, seen)):
            out.append((clause, len(seen)))
        return out

    def _feed(tokens, seen):
        for t in tokens:
            seen.append(t)
            yield t

    out = stream(["The", " sea", " is", " my", " home", ".", " I", " live", " there", "."])
    assert out == [("The sea is my home.", 6), ("I live there.", 10)]
    out = stream(["Well", ".", "..", " I", " suppose", " so", "."])  # an ellipsis after the early cut
    assert [c for c, _ in out] == ["Well.", "I suppose so."]
    out = stream(["Capt", ".", " Nemo", " speaks", ",", " friend", "."])
    assert out[0] == ("Capt. Nemo speaks,", 6)  # "Capt." is no sentence end
    out = stream(["It", " is", " 3", ".", "5", " knots", "."])
    assert [c for c, _ in out] == ["It is 3.5 knots."]
    out = stream(['"', "Mobilis", " in", " mobili", '."', " Our", " motto", "."])
    assert [c for c, _ in out] == ['"Mobilis in mobili."', "Our motto."]


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


def test_tags_are_never_cut_in_half():
    out = clauses("[emotion: sad] Alas, my friend. [gesture: bow] Farewell.", piece=2)
    assert out[0][0].startswith("[emotion: sad]") and all(c.count("[") == c.count("]") for c, _ in out)


def test_repair_cuts_role_markers_and_fixes_tags():
    from mio.thinker.plan import repair

    assert repair("Fine, sir. <|im_end|> user: and you?") == ("Fine, sir. ", True)
    assert repair("Yes.\nUser: hello")[1] is True
    text, stop = repair("(joyful) We sail at dawn [gesture: Nod] [emotion: gleeful] [emotion: sad")
    assert not stop and "[emotion: happy]" in text and "[gesture: nod]" in text
    assert "gleeful" not in text and "[emotion: sad" not in text


def test_validate_rejects_what_cannot_be_spoken():
    import pytest

    from mio.thinker.plan import Clause, PlanError, validate

    d = Emotion("neutral", 0.5)
    assert validate(annotate("The sea is calm.", d)).text == "The sea is calm."
    for bad in (Clause("", d, None), Clause("x" * 300, d, None), Clause("%%% 123 ### !!", d, None),
                Clause("Hi there.", Emotion("smug", 0.5), None), Clause("Hi there.", Emotion("happy", 1.5), None),
                Clause("Hi there.", d, "rm -rf / && echo {}")):
        with pytest.raises(PlanError):
            validate(bad)


def test_json_plans_are_parsed_and_repaired():
    import pytest

    from mio.thinker.plan import PlanError, parse_plan_json

    d = Emotion("neutral", 0.5)
    out = parse_plan_json('```json\n{"clauses": [{"say": "Welcome aboard.", "emotion": "joyful", "gesture": "Bow"},'
                          " {'say': 'The sea is everything.', 'emotion': {'label': 'calm', 'intensity': 3}},]}\n```", d)
    assert [c.text for c in out] == ["Welcome aboard.", "The sea is everything."]
    assert out[0].emotion.label == "happy" and out[0].gesture == "bow"
    assert out[1].emotion.label == "neutral" and out[1].emotion.intensity == 1.0
    assert parse_plan_json('{"say": "Cut off mid', d)[0].text == "Cut off mid"  # unclosed JSON repaired
    with pytest.raises(PlanError):
        parse_plan_json('{"emotion": "happy"}', d)
    with pytest.raises(PlanError):
        parse_plan_json("no json here", d)
