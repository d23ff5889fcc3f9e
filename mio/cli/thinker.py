"""Thinker commands: `mio story ...` (packs, story clock, text-only chat) and `mio bench thinker`."""

from __future__ import annotations

import argparse
import json
import sys

from mio.cli.common import check_at_least, config_from_args, say, write_bench
from mio.core import packaged
from mio.core.errors import InputError


def _story_info(args: argparse.Namespace) -> int:
    from mio.thinker.persona import load_character

    cfg = config_from_args(args)
    ch = load_character(args.pack or cfg.character)
    story = ch.story
    info = {"character": ch.name, "folder": str(ch.folder)}
    if story is not None:
        info.update({"story": story.title, "nodes": len(story.nodes), "edges": len(story.edges),
                     "start": story.clock.start, "start_label": story.clock.label(story.clock.start),
                     "chapters": [c.label() for c in story.clock.chapters] if args.chapters else len(story.clock.chapters)})
    print(json.dumps(info, indent=2))
    return 0


def _story_validate(args: argparse.Namespace) -> int:
    """Every card of the pack parsed, and each card's voice and look resolved (no model loads)."""
    from mio.runtime.cast import check_cast, pack_cast

    cast = pack_cast(args.path)
    for ch in cast:
        check_cast(ch)
    story = cast[0].story
    n = (len(story.nodes), len(story.edges)) if story else (0, 0)
    names = ", ".join(ch.name for ch in cast)
    print(f"ok: {names} ({n[0]} nodes, {n[1]} edges; voices and looks resolved)")
    return 0


def _story_ask(args: argparse.Namespace) -> int:
    """Text-only conversation with the Thinker (no voice or video): fast to try the memory."""
    from mio.thinker.persona import load_character
    from mio.thinker.thinker import Thinker

    if args.text and not any(t.strip() for t in args.text):  # said before the model loads
        raise InputError("the text is empty; ask something, e.g. mio story ask \"Who are you?\" "
                         "(or no text at all to talk line by line)")
    cfg = config_from_args(args)
    th = Thinker(cfg.thinker)
    ch = load_character(cfg.character)
    conv = th.new_conversation(ch, user_id=args.user, story_time=args.time)
    th.warm(conv)
    lines = args.text or []
    interactive = not lines
    if conv.story_label():
        print(f"[{conv.story_label()}]", file=sys.stderr)
    while True:
        if interactive:
            try:
                line = input("you: ")
            except EOFError:
                break
            if line.strip() in ("/quit", "/exit"):
                break
        elif lines:
            line = lines.pop(0)
            print(f"you: {line}")
        else:
            break
        if not line.strip():
            continue
        said = [c.text for c in th.reply(conv, line)]
        print(f"{ch.name}: {' '.join(said)}", flush=True)
        if not th.is_command(line):
            conv.add("user", line)
            conv.add("assistant", " ".join(said))
    return 0


def _story_memory(args: argparse.Namespace) -> int:
    """Whose episodic memories are kept (per user and character), and forgetting one user's."""
    import time
    from pathlib import Path

    from mio.core.paths import memory_folder
    from mio.thinker.memory.episodic import EpisodicStore

    cfg = config_from_args(args)
    folder = memory_folder(cfg.thinker.memory_dir)
    files = sorted(Path(folder).glob("episodic-*.sqlite")) if folder != ":memory:" else []
    if not files:
        print(f"no episodic memories are kept in {folder}")
        return 0
    for path in files:
        store = EpisodicStore(path, None)
        try:
            if args.forget is not None:
                n = store.forget_user(args.forget)
                print(f"{path.name}: forgot {n} memories of {args.forget!r}")
                continue
            visitors = store.visitors()
            print(f"{path} ({len(visitors)} user/character pairs)")
            for v in visitors:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.last))
                print(f"  {v.user_id:24s} {v.character:12s} {v.memories:5d} lines in {v.sessions:3d} sessions, last {when}")
        finally:
            store.close()
    return 0


def _bench_thinker(args: argparse.Namespace) -> int:
    from mio.bench.thinker import bench_thinker

    check_at_least(args, limit=1)
    cfg = config_from_args(args)
    from mio.bench.thinker import CONDITIONS

    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()] if args.conditions else list(CONDITIONS)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions:
        raise InputError(f"--conditions: {', '.join(unknown) or 'none given'}; choose from {', '.join(CONDITIONS)}")
    judge = None
    if args.judge_url:
        from mio.core.config import ThinkerConfig
        from mio.thinker.llm.openai_compat import OpenAICompatLLM

        judge = OpenAICompatLLM(ThinkerConfig(backend="openai", url=args.judge_url, model=args.judge_model))
    if not args.models:
        result = bench_thinker(cfg, limit=args.limit, retrieval=not args.no_retrieval, conditions=conditions,
                               llm_suites=not args.retrieval_only, judge_llm=judge, progress=say)
        return write_bench(result, args.output)
    from mio.bench.thinker import compare_models

    names = list(packaged.MODELS) if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
    for name in names:
        packaged.get(name)  # an unknown name fails before anything runs
    result = compare_models(cfg, names, limit=args.limit, judge_llm=judge, progress=say)
    return write_bench(result, args.output)


def _bench_llm(args: argparse.Namespace) -> int:
    from mio.bench.llm import bench_llm

    check_at_least(args, reps=1, turns=1)
    return write_bench(bench_llm(config_from_args(args), reps=args.reps, turns=args.turns,
                                 beside_renderer=not args.no_renderer, progress=say), args.output)


def register(sub, bench_sub, common) -> None:
    s = sub.add_parser("story", parents=[common], help="story packs, the story clock, text-only chat with the Thinker")
    ssub = s.add_subparsers(dest="story_cmd", required=True)
    i = ssub.add_parser("info", parents=[common], help="what a story pack holds")
    i.add_argument("pack", nargs="?", help="character or pack (default: the configured character)")
    i.add_argument("--chapters", action="store_true", help="list the chapters of the story clock")
    i.set_defaults(func=_story_info)
    v = ssub.add_parser("validate", parents=[common], help="check a story pack; errors name file, line and field")
    v.add_argument("path")
    v.set_defaults(func=_story_validate)
    a = ssub.add_parser("ask", parents=[common], help="talk to the character in text only (no voice or video)")
    a.add_argument("text", nargs="*", help="user lines (none: read from the terminal); /time N sets the story clock")
    a.add_argument("--time", type=float, default=None, help="story time (chapter) to start at")
    a.add_argument("--user", default="guest", help="user id for episodic memory")
    a.set_defaults(func=_story_ask)

    m = ssub.add_parser("memory", parents=[common],
                        help="whose episodic memories are kept (what users told a character); --forget USER deletes one user's")
    m.add_argument("--forget", metavar="USER", default=None,
                   help="delete every memory of this user id (e.g. guest: the terminal and `mio say` user)")
    m.set_defaults(func=_story_memory)

    b = bench_sub.add_parser("thinker", parents=[common],
                             help="retrieval at 10k/50k, TT / RT / CharacterBox for Baseline vs Diegetic memory")
    b.add_argument("--limit", type=int, default=None, help="only the first N items of each suite")
    b.add_argument("--models", default=None,
                   help="compare packaged models side by side: 'all' or a comma list of "
                        f"{', '.join(packaged.MODELS)} (the ones not installed are reported as such)")
    b.add_argument("--retrieval-only", action="store_true", help="skip the LLM suites")
    b.add_argument("--conditions", default=None,
                   help="comma list of the conditions to run: baseline (flat RAG, no guards), diegetic (the "
                        "story-time gate and the guards), diegetic_unguarded (the model's own behaviour); default all")
    b.add_argument("--no-retrieval", action="store_true", help="skip the retrieval benchmark")
    b.add_argument("--judge-url", help="OpenAI-compatible server for the CharacterBox judge (default: offline heuristic)")
    b.add_argument("--judge-model", default="judge")
    b.add_argument("-o", "--output", default="out/bench/thinker.json")
    b.set_defaults(func=_bench_thinker)

    m = bench_sub.add_parser("llm", parents=[common],
                             help="the Thinker's embedded LLM (thinker.embedded) as shipped vs served (Q8_0) vs f16: pre-fill and decode "
                                  "speed, fidelity, time to the first clause")
    m.add_argument("--reps", type=int, default=5, help="speed repetitions (the encodings alternate within each)")
    m.add_argument("--turns", type=int, default=6, help="Thinker turns per encoding for the first-clause time")
    m.add_argument("--no-renderer", action="store_true", help="skip decoding beside the renderer (thread vs process)")
    m.add_argument("-o", "--output", default="out/bench/llm.json")
    m.set_defaults(func=_bench_llm)
