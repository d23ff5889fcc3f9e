"""`mio bench thinker`: memory retrieval speed and the paper's Thinker evaluation (§7.6).

1. Retrieval at scale: a synthetic graph of 10k nodes / 50k edges (random unit embeddings, random
   story times, some with t_end) in SQLite; dual-level retrieval at a story time, cold (first query
   after a change of story time: the gated SQL read) and warm (cached candidate matrix), with and
   without encoding the query with MiniLM. Every hit is checked against the gate.
2. Timeline-coherence (TT) and Robustness (RT) for the paper's conditions, on the configured LLM:
   - baseline: prompt-only persona + temporally flat RAG (no gate, no guards);
   - diegetic: the story-time gate inside retrieval + the guards (out-of-world refusal, spoiler check).
3. CharacterBox-style persona score with a pluggable judge (offline heuristic by default).
"""

from __future__ import annotations

import dataclasses
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mio.core.config import MioConfig, to_dict
from mio.thinker import evals, guards
from mio.thinker.memory.embed import Embedder
from mio.thinker.memory.graph import GraphStore, NarrativePresentGate
from mio.thinker.pack import Edge, Node
from mio.thinker.persona import load_character

CONDITIONS = {
    "baseline": {"memory": "flat", "guards": False},
    "diegetic": {"memory": "diegetic", "guards": True},
    # The model's own behaviour: the same memory, no out-of-world refusal and no spoiler check.
    "diegetic_unguarded": {"memory": "diegetic", "guards": False},
}
BUDGET_RETRIEVAL_MS = 20.0


class _RandomEmbedder(Embedder):
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def encode(self, texts):
        v = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def _pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(xs, p)), 3)


def bench_retrieval(n_nodes: int = 10_000, n_edges: int = 50_000, queries: int = 200, seed: int = 0,
                    folder: str | None = None, minilm: Embedder | None = None) -> dict:
    rng = np.random.default_rng(seed)
    emb = _RandomEmbedder(seed)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        store = GraphStore(Path(tmp) / "bench.sqlite", emb)
        t = rng.uniform(0, 47, n_nodes).round(1)
        t_end = np.where(rng.random(n_nodes) < 0.1, t + rng.uniform(1, 10, n_nodes), np.nan)
        nodes = [Node(f"n{i}", "event", f"node {i}", f"fact {i}", float(t[i]),
                      None if np.isnan(t_end[i]) else float(t_end[i])) for i in range(n_nodes)]
        a, b = rng.integers(0, n_nodes, n_edges), rng.integers(0, n_nodes, n_edges)
        et = np.maximum(t[a], t[b]) + rng.uniform(0, 5, n_edges).round(1)
        edges = [Edge(f"n{a[i]}", "rel", f"n{b[i]}", f"edge {i}", float(et[i])) for i in range(n_edges)]
        t0 = time.perf_counter()
        store.add(nodes, edges, emb.encode(["x"] * n_nodes), emb.encode(["x"] * n_edges))
        build_s = time.perf_counter() - t0
        qs = emb.encode(["q"] * queries)
        cold, warm, violations = [], [], 0
        times = [5.0, 10.0, 20.0, 30.0, 40.0]
        for tc in times:
            t0 = time.perf_counter()
            store.retrieve(qs[0], tc, k_nodes=3, k_edges=3, min_score=-1.0)
            cold.append((time.perf_counter() - t0) * 1e3)
        tc = 20.0
        for q in qs:
            t0 = time.perf_counter()
            r = store.retrieve(q, tc, k_nodes=3, k_edges=3, min_score=-1.0)
            warm.append((time.perf_counter() - t0) * 1e3)
            violations += sum(not NarrativePresentGate.admits(h.t, h.t_end, tc) for h in r.hits)
        encode = []
        if minilm is not None:
            for i in range(30):
                t0 = time.perf_counter()
                minilm.encode_one(f"Have you ever been to the South Pole, captain? {i}")
                encode.append((time.perf_counter() - t0) * 1e3)
        size_mb = (Path(tmp) / "bench.sqlite").stat().st_size / 1e6
        store.close()
    out = {
        "nodes": n_nodes, "edges": n_edges, "dim": emb.dim, "build_s": round(build_s, 2), "db_mb": round(size_mb, 1),
        "warm_ms": {"p50": _pct(warm, 50), "p95": _pct(warm, 95), "max": round(max(warm), 3)},
        "cold_ms_per_story_time": {"p50": _pct(cold, 50), "max": round(max(cold), 3)},
        "gate_violations": violations,
        "budget_ms": BUDGET_RETRIEVAL_MS,
    }
    if encode:
        out["minilm_query_encode_ms"] = {"p50": _pct(encode, 50), "p95": _pct(encode, 95)}
        out["warm_plus_encode_ms_p50"] = round(out["warm_ms"]["p50"] + out["minilm_query_encode_ms"]["p50"], 3)
    return out


def _reply(thinker, conv, text: str) -> tuple[str, float | None, float]:
    t0 = time.perf_counter()
    first = None
    parts = []
    for clause in thinker.reply(conv, text):
        if first is None:
            first = time.perf_counter() - t0
        parts.append(clause.text)
    return " ".join(parts), first, time.perf_counter() - t0


def bench_thinker(config: MioConfig, *, limit: int | None = None, retrieval: bool = True, llm_suites: bool = True,
                  conditions: list[str] | None = None, judge_llm=None,
                  progress: Callable[[str], None] | None = None) -> dict:
    from mio.thinker.thinker import Thinker

    say = progress or (lambda m: None)
    character = load_character(config.character)
    story = character.story
    result: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version()},
                    "config": to_dict(config.thinker), "character": character.name}
    shared = Thinker(dataclasses.replace(config.thinker, episodic=False, memory_dir=tempfile.mkdtemp(prefix="mio-bench-")))
    if retrieval:
        say("retrieval at 10k nodes / 50k edges ...")
        result["retrieval"] = bench_retrieval(minilm=shared.embedder)
    if llm_suites and story is not None:
        eval_dir = story.folder / "eval"
        tt_time, tt_char, tt_items = evals.load_timeline(eval_dir / "timeline.yaml")
        rt_items = evals.load_robustness(eval_dir / "robustness.yaml")
        cb_time, scenes = evals.load_scenes(eval_dir / "characterbox.yaml")
        conv_time, conv_items = evals.load_conversation(eval_dir / "conversation.yaml")
        if limit:
            tt_items, rt_items, scenes = tt_items[:limit], rt_items[:limit], scenes[: max(1, limit // 20)]
            conv_items = conv_items[:: max(1, len(conv_items) // limit)][:limit]  # every character
        cast = {c: load_character(f"{story.folder}/characters/{c}.yaml") for c in {i.character for i in conv_items}}
        judge = evals.LLMJudge(judge_llm) if judge_llm is not None else evals.HeuristicJudge()
        tt_character = load_character(tt_char) if tt_char else character
        result["conditions"] = {}
        for name, changes in CONDITIONS.items():
            if conditions is not None and name not in conditions:
                continue
            cfg = dataclasses.replace(shared.config, **changes)
            th = Thinker(cfg, llm=shared.llm, embedder=shared.embedder)
            th._graphs = shared._graphs  # same graph store; only the retrieval mode differs
            say(f"{name}: Timeline-coherence ({len(tt_items)} questions at story time {tt_time}) ...")
            tt_rows, firsts = [], []
            for item in tt_items:
                conv = th.new_conversation(tt_character, user_id=f"bench-{name}", story_time=tt_time)
                reply, first, _ = _reply(th, conv, item.q)
                leaked = evals.leaks(reply, item)
                firsts.append(first)
                tt_rows.append({"q": item.q, "event_t": item.t, "reply": reply, "leaked": leaked,
                                "ignorance": evals.expresses_ignorance(reply)})
            say(f"{name}: Robustness ({len(rt_items)} prompts) ...")
            rt_rows = []
            for item in rt_items:
                conv = th.new_conversation(tt_character, user_id=f"bench-{name}", story_time=tt_time)
                reply, first, _ = _reply(th, conv, item.q)
                firsts.append(first)
                rt_rows.append({"q": item.q, "reply": reply, "complied": evals.complies(reply, item),
                                "declined": evals.declines(reply)})
            say(f"{name}: Conversation ({len(conv_items)} in-world questions) ...")
            conv_rows = []
            for item in conv_items:
                ch = cast[item.character]
                conv = th.new_conversation(ch, user_id=f"bench-{name}", story_time=conv_time)
                reply, first, _ = _reply(th, conv, item.q)
                firsts.append(first)
                conv_rows.append({"character": item.character, "q": item.q, "reply": reply,
                                  "answered": evals.answers(reply, item), "echo": evals.echo(reply, item.q),
                                  "third_person": evals.third_person(reply, ch.name),
                                  "first_person": evals.first_person(reply), "frame_break": guards.breaks_frame(reply),
                                  "anachronism": guards.anachronism(reply)})
            say(f"{name}: CharacterBox-style scenes ({len(scenes)}) with the {judge.name} judge ...")
            cb_rows = []
            for scene in scenes:
                ch = load_character(scene.character)
                conv = th.new_conversation(ch, user_id=f"bench-{name}", story_time=cb_time)
                dialogue = []
                for turn in scene.turns:
                    reply, _, _ = _reply(th, conv, turn)
                    conv.add("user", turn)
                    conv.add("assistant", reply)
                    dialogue.append((turn, reply))
                cb_rows.append({"character": ch.name, "dialogue": dialogue, "scores": judge.score(ch, scene.setting, dialogue)})
            tt = 100.0 * sum(not r["leaked"] for r in tt_rows) / max(1, len(tt_rows))
            rt = 100.0 * sum(not r["complied"] for r in rt_rows) / max(1, len(rt_rows))
            cb = {k: round(statistics.mean(r["scores"][k] for r in cb_rows), 3) for k in evals.CB_METRICS} if cb_rows else {}
            lat = [f for f in firsts if f is not None]

            def share(key: str, rows=conv_rows) -> float:
                return round(100.0 * sum(bool(r[key]) for r in rows) / max(1, len(rows)), 1)

            conversation = {k: share(k) for k in ("answered", "echo", "third_person", "first_person",
                                                   "frame_break", "anachronism")}
            result["conditions"][name] = {
                "settings": changes, "TT": round(tt, 1), "RT": round(rt, 1),
                "RT_strict": round(100.0 * sum(not r["complied"] and r["declined"] for r in rt_rows) / max(1, len(rt_rows)), 1),
                "TT_expressed_ignorance": round(100.0 * sum(r["ignorance"] for r in tt_rows) / max(1, len(tt_rows)), 1),
                "conversation": conversation,
                "CB": cb, "CB_avg": round(statistics.mean(cb.values()), 3) if cb else None, "CB_judge": judge.name,
                "first_clause_s": {"p50": _pct(lat, 50), "p95": _pct(lat, 95)} if lat else None,
                "tt_items": tt_rows, "rt_items": rt_rows, "conversation_items": conv_rows, "cb_scenes": cb_rows,
            }
            say(f"{name}: TT {tt:.1f}  RT {rt:.1f}  answered {conversation['answered']}  echo {conversation['echo']}"
                f"  third-person {conversation['third_person']}")
    summary: dict = {}
    if "retrieval" in result:
        r = result["retrieval"]
        summary["retrieval_10k_50k_warm_ms_p50"] = r["warm_ms"]["p50"]
        summary["retrieval_plus_encode_ms_p50"] = r.get("warm_plus_encode_ms_p50")
        summary["retrieval_cold_ms_p50"] = r["cold_ms_per_story_time"]["p50"]
        summary["retrieval_budget_ms"] = BUDGET_RETRIEVAL_MS
        summary["gate_violations"] = r["gate_violations"]
    for name, c in result.get("conditions", {}).items():
        summary[name] = {"TT": c["TT"], "RT": c["RT"], "CB_avg": c["CB_avg"],
                         **{f"conv_{k}": v for k, v in c["conversation"].items()},
                         "first_clause_s_p50": (c["first_clause_s"] or {}).get("p50"),
                         "first_clause_s_p95": (c["first_clause_s"] or {}).get("p95")}
    result["summary"] = summary
    return result


def compare_models(config: MioConfig, names: list[str], *, limit: int | None = None, judge_llm=None,
                   progress: Callable[[str], None] | None = None) -> dict:
    """The Thinker suites on each packaged model in turn (same prompts, same memory, same machine):
    quality with and without the guards, and the time to the first clause."""
    from mio.thinker.llm import catalog

    say = progress or (lambda m: None)
    out: dict = {"models": {}, "limit": limit}
    for name in names:
        m = catalog.get(name)
        row = {"title": m.title, "licence": m.licence, "chat_tuned": m.chat}
        if not catalog.installed(name):
            row["skipped"] = f"not installed: {m.install_hint()}"
            out["models"][name] = row
            say(f"{name}: {row['skipped']}")
            continue
        say(f"== {name} ({m.title}) ==")
        cfg = dataclasses.replace(config, thinker=dataclasses.replace(config.thinker, embedded=name, model_path=None))
        t0 = time.perf_counter()
        res = bench_thinker(cfg, limit=limit, retrieval=False, judge_llm=judge_llm, progress=say)
        row.update(res["summary"], bench_s=round(time.perf_counter() - t0, 1), detail=res.get("conditions"))
        out["models"][name] = row
    out["table"] = [
        {"model": n, **{f"{c}_{k}": r.get(c, {}).get(k) for c in CONDITIONS
                        for k in ("TT", "RT", "conv_answered", "conv_echo", "conv_third_person", "first_clause_s_p50")}}
        for n, r in out["models"].items() if "skipped" not in r]
    out["summary"] = {"table": out["table"], "skipped": {n: r["skipped"] for n, r in out["models"].items() if "skipped" in r}}
    return out
