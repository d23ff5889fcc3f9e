"""The speaker's memory notes in the first person (mio.thinker.pov): the name becomes I / me / my, the
verb after it agrees, pronouns follow only where nobody else is named, and other people's facts stay."""

import pytest

from mio.thinker.pov import first_person


@pytest.mark.parametrize("name, fact, memory", [
    ("Captain Nemo", "Captain Nemo is a learned engineer, naturalist and musician who speaks several languages.",
     "I am a learned engineer, naturalist and musician who speaks several languages."),
    ("Captain Nemo", "Captain Nemo never reveals his true name, his country or what he once was.",
     "I never reveal my true name, my country or what I once was."),
    ("Captain Nemo", "A long cigar-shaped submarine vessel of steel plates, built in secret by Captain Nemo.",
     "A long cigar-shaped submarine vessel of steel plates, built in secret by me."),
    ("Captain Nemo", "Aronnax asked Nemo for freedom, and Nemo answered that whoever boards the Nautilus may never leave.",
     "Aronnax asked me for freedom, and I answered that whoever boards the Nautilus may never leave."),
    ("Captain Nemo", "Nemo's rifles fire glass bullets.", "My rifles fire glass bullets."),
    ("Captain Nemo", "After the sinking Nemo knelt weeping.", "After the sinking I knelt weeping."),
    ("Captain Nemo", "The commander told Aronnax to call him Captain Nemo, and nothing more.",
     "The commander told Aronnax to call him Captain Nemo, and nothing more."),  # a name said as a name
    ("Professor Aronnax", "Pierre Aronnax, assistant professor at the Paris Museum.", "I, assistant professor at the Paris Museum."),
    ("Professor Aronnax", "In New York Aronnax published an article.", "In New York I published an article."),
    ("Professor Aronnax", "Paris, where Aronnax works at the Museum.", "Paris, where I work at the Museum."),
    ("Ned Land", "Ned Land and Conseil gave Aronnax the last air of their tank.",
     "I and Conseil gave Aronnax the last air of their tank."),
    ("Ned Land", "Nemo owes his life to Ned Land, who saved him from a squid.",
     "Nemo owes his life to me, who saved him from a squid."),  # Nemo's "his" is not the speaker's
    ("Conseil", "Ned Land loves meat.", "Ned Land loves meat."),  # about someone else: unchanged
])
def test_facts_become_the_speakers_own_memories(name, fact, memory):
    assert first_person(fact, name) == memory
