"""Diegetic knowledge graph and episodic memory: the Narrative-Present gate (property-tested),
dual-level retrieval, the flat Baseline, persistence across restarts, concurrency, user isolation."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mio.thinker.memory.embed import HashEmbedder
from mio.thinker.memory.episodic import EpisodicStore
from mio.thinker.memory.graph import GraphStore, NarrativePresentGate
from mio.thinker.pack import Edge, Node
from mio.thinker.persona import load_character

EMB = HashEmbedder()

times = st.floats(min_value=0, max_value=50, allow_nan=False).map(lambda x: round(x, 1))
node_st = st.tuples(times, st.one_of(st.none(), st.floats(min_value=0.1, max_value=20).map(lambda d: round(d, 1))))


@settings(max_examples=40, deadline=None)
@given(nodes=st.lists(node_st, min_size=1, max_size=30), t_now=times, seed=st.integers(0, 1000))
def test_no_fact_outside_the_narrative_present_is_ever_retrieved(nodes, t_now, seed):
    rng = np.random.default_rng(seed)
    store = GraphStore(":memory:", EMB)
    ns = [Node(f"n{i}", "event", f"n{i}", f"fact {i}", t, None if d is None else t + d) for i, (t, d) in enumerate(nodes)]
    es = []
    for k in range(len(ns)):
        a, b = ns[rng.integers(len(ns))], ns[rng.integers(len(ns))]
        es.append(Edge(a.id, "rel", b.id, f"edge {k}", max(a.t, b.t) + float(rng.integers(0, 5)),
                       None if rng.random() < 0.7 else max(a.t, b.t) + 6.0))
    store.add(ns, es)
    by_id = {n.id: n for n in ns}
    q = EMB.encode_one("fact edge")
    r = store.retrieve(q, t_now, k_nodes=len(ns), k_edges=len(es), min_score=-2.0)  # ask for everything
    for h in r.hits:
        assert NarrativePresentGate.admits(h.t, h.t_end, t_now)
    for h in r.edges:
        src, _, dst = h.id.split(":")
        assert by_id[src].t <= t_now and by_id[dst].t <= t_now
    visible = {n.id for n in ns if NarrativePresentGate.admits(n.t, n.t_end, t_now)}
    assert {h.id for h in r.nodes} == visible  # the gate removes exactly the invisible ones
    flat = store.retrieve(q, None, k_nodes=len(ns), k_edges=0, min_score=-2.0, flat=True)
    assert len(flat.nodes) == len(ns)  # the Baseline sees everything
    # what the gate withholds from the prompt is exactly the future
    assert {h.id for h in store.withheld(q, t_now, k=len(ns) + len(es), min_score=-2.0) if h.level == "node"} == \
        {n.id for n in ns if n.t > t_now}


def test_dual_level_retrieval_on_the_nemo_pack_respects_story_time():
    story = load_character("nemo").story
    store = GraphStore(":memory:", EMB)
    store.import_pack(story)
    early = store.retrieve("South Pole black flag", 10, min_score=0.05)
    late = store.retrieve("South Pole black flag", 40, min_score=0.05)
    assert all(h.t <= 10 for h in early.hits)
    assert any("South Pole" in h.text for h in late.nodes) and any("flag" in h.text for h in late.hits)
    flat = store.retrieve("South Pole black flag", 10, min_score=0.05, flat=True)
    assert any(h.t > 10 for h in flat.hits)
    # t_end: the guests are prisoners from chapter 10 until the escape in chapter 46
    ids = lambda t: {h.id for h in store.retrieve("guests prisoners may never leave", t, k_nodes=20, min_score=0.05).nodes}  # noqa: E731
    assert "guests_prisoners" in ids(20) and "guests_prisoners" not in ids(47)


def test_graph_persists_across_restart_and_is_not_rebuilt(tmp_path):
    story = load_character("nemo").story
    path = tmp_path / "g.sqlite"
    s1 = GraphStore(path, EMB)
    assert s1.import_pack(story) is True
    counts = s1.counts()
    s1.close()
    s2 = GraphStore(path, EMB)
    assert s2.import_pack(story) is False and s2.counts() == counts == (len(story.nodes), len(story.edges))
    assert s2.retrieve("Nautilus electricity", 12, min_score=0.05).nodes


def test_episodic_memory_is_per_user_persistent_and_safe_under_concurrency(tmp_path):
    path = tmp_path / "e.sqlite"
    a, b = EpisodicStore(path, EMB), EpisodicStore(path, EMB)  # two processes' worth of connections

    def write(store, user, n):
        for i in range(n):
            store.add(user, "nemo", f"s-{user}", "user", f"{user} likes whale number {i}")

    threads = [threading.Thread(target=write, args=(s, u, 25)) for s, u in ((a, "anna"), (b, "bob"), (a, "carl"), (b, "anna2"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.count(u) for u in ("anna", "bob", "carl", "anna2")] == [25, 25, 25, 25]
    a.add("anna", "nemo", "s1", "user", "My name is Anna and I love narwhals.")
    a.close()
    b.close()
    c = EpisodicStore(path, EMB)  # restart
    got = c.recall("anna", "nemo", "Do you remember my name, Anna?", exclude_session="s2", min_score=0.1)
    assert got and "Anna" in got[0].text
    assert not any("Anna" in e.text for e in c.recall("bob", "nemo", "my name is Anna", min_score=-1, k=50))
    assert c.recall("anna", "nemo", "my name is Anna", exclude_session="s1", min_score=0.5) == []  # same session excluded
    assert c.recall("anna", "aronnax", "my name is Anna", min_score=-1) == []  # per character, too
    assert c.forget_user("anna") == 26 and c.count("anna") == 0  # a benchmark's visitor leaves no trace
    assert c.count("bob") == 25 and c.count("anna2") == 25  # and nobody else is touched


@pytest.mark.slow
def test_numpy_minilm_equals_sentence_transformers_and_needs_no_torch():
    """The memory's MiniLM runs in numpy: the same embeddings as sentence-transformers (whose
    torch import took ~7 s of every start), for short, empty, accented and over-long texts."""
    import subprocess
    import sys

    from sentence_transformers import SentenceTransformer

    from mio.thinker.memory.embed import MiniLMEmbedder, minilm_folder

    texts = ["What do you think about the sea?", "", "Ünïcödé — dashes, numbers 3.5!", "sea " * 400,
             "The Nautilus is seventy metres long and eight wide, displacing about fifteen hundred tonnes."]
    ours = MiniLMEmbedder().encode(texts)
    ref = SentenceTransformer(str(minilm_folder()), device="cpu").encode(texts, normalize_embeddings=True)
    assert ours.shape == (5, 384) and ours.dtype == np.float32
    assert np.all((ours * ref).sum(-1) > 0.99999)
    code = ("import sys; from mio.thinker.memory.embed import MiniLMEmbedder; MiniLMEmbedder().encode(['hi']); "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
