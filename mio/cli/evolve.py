"""`mio evolve collect|record|rewards|train|eval` — the self-evolution loop (§6.2.1-6.2.2).

    mio evolve collect --n 48 --eval-n 16        # pi_gen scenarios + teacher preference pairs
    mio evolve record "Hello" "Tell me of the sea" --rating 4 [--audio a.wav b.wav] [--image face.png]
    mio evolve rewards                             # descriptors d_t + oracle turn rewards R_t (Eq. 19-21)
    mio evolve train --preset tiny --steps 8       # GRPO on LoRA (Eq. 22-23), resumable
    mio evolve eval                                # before/after on held-apart scenarios + Robustness

Everything is written under --out (default out/evolve); collect and train resume where they stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mio.cli.common import config_from_args, say, write_bench


def _tqdm(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True)


def _teacher(args, cfg):
    """The teacher / oracle LLM: --teacher-url (OpenAI-compatible) or the configured Thinker LLM."""
    import dataclasses

    from mio.core import registry

    if getattr(args, "teacher_url", None):
        tcfg = dataclasses.replace(cfg.thinker, backend="openai", url=args.teacher_url, model=args.teacher_model,
                                   lora_path=None)
    else:
        tcfg = dataclasses.replace(cfg.thinker, lora_path=None)  # the teacher is the frozen base, never the adapter
    return registry.create("thinker", tcfg.backend, tcfg)


def _collect(args: argparse.Namespace) -> int:
    from mio.thinker.evolve.pairs import PairTeacher, read_pairs, write_pairs
    from mio.thinker.evolve.scenarios import ScenarioPolicy
    from mio.thinker.persona import load_character

    cfg = config_from_args(args)
    out = Path(args.out)
    character = load_character(cfg.character)
    teacher_llm = _teacher(args, cfg)
    policy = ScenarioPolicy(character, cfg.character, seed=args.seed, rewriter=teacher_llm if args.rewrite else None)
    teacher = PairTeacher(teacher_llm, lambda ref: character if ref == cfg.character else load_character(ref),
                          negative_teacher=_teacher(args, cfg))
    for split, n, name in (("train", args.n, "pairs.jsonl"), ("eval", args.eval_n, "eval_pairs.jsonl")):
        path = out / name
        done = {p.scenario["id"] for p in read_pairs(path)} if path.is_file() else set()
        todo = [s for s in policy.generate(n, split) if s.id not in done]
        say(f"{split}: {len(done)} pairs already in {path}, {len(todo)} to write")
        bar = _tqdm(len(todo), f"pairs ({split})")
        for i, sc in enumerate(todo):
            write_pairs(path, [teacher.pair(sc, i + len(done))])
            bar.update(1)
        bar.close()
        pairs = read_pairs(path)
        src = sum(p.pos_source == "teacher" for p in pairs), sum(p.neg_source == "teacher" for p in pairs)
        print(json.dumps({"split": split, "pairs": len(pairs), "file": str(path), "pos_from_teacher": src[0],
                          "neg_from_teacher": src[1]}))
    return 0


def _record(args: argparse.Namespace) -> int:
    """A text conversation (optionally with a wav of the user's voice and a camera image per line),
    logged as a trajectory with its rating: the same Recorder the runtime session uses."""
    from mio.thinker.evolve.trajectory import TrajectoryLog
    from mio.thinker.persona import load_character
    from mio.thinker.thinker import Thinker

    cfg = config_from_args(args)
    th = Thinker(cfg.thinker)
    ch = load_character(cfg.character)
    conv = th.new_conversation(ch, user_id=args.user)
    log = TrajectoryLog.in_memory_dir(cfg.thinker.memory_dir)
    rec = log.begin(conv.session_id, args.user, cfg.character)
    for i, line in enumerate(args.text):
        if args.audio and i < len(args.audio):
            from mio.audio import read_audio

            audio, sr = read_audio(args.audio[i], what="--audio file")  # one-line errors for missing/bad files
            rec.user_audio(audio.mean(axis=1) if audio.ndim == 2 else audio, sr)
        if args.image and i < len(args.image):
            import numpy as np
            from PIL import Image

            rec.camera(np.asarray(Image.open(args.image[i]).convert("RGB")), now=float(i))
        rec.user_turn(line, float(i))
        said = []
        for c in th.reply(conv, line):
            said.append(c.text)
            rec.clause(c.text, c.emotion.label, c.emotion.intensity, c.gesture)
        print(f"you: {line}\n{ch.name}: {' '.join(said)}", flush=True)
        conv.add("user", line)
        conv.add("assistant", " ".join(said))
    if args.rating is not None:
        rec.rate(args.rating)
    rec.close()
    print(json.dumps({"session": conv.session_id, "turns": rec.n, "rating": args.rating, "store": log.db.path}))
    return 0


def _rewards(args: argparse.Namespace) -> int:
    from mio.thinker.evolve.descriptors import describe_trajectory
    from mio.thinker.evolve.oracle import CueOracle, LLMOracle
    from mio.thinker.evolve.trajectory import TrajectoryLog, global_reward
    from mio.thinker.memory.embed import create_embedder
    from mio.thinker.persona import load_character

    cfg = config_from_args(args)
    log = TrajectoryLog.in_memory_dir(cfg.thinker.memory_dir)
    if args.rate:
        sid, _, stars = args.rate.rpartition(":")
        log.rate(sid, float(stars))
    ids = [args.session] if args.session else log.session_ids(rated=True)
    if not args.session and not args.redo:
        ids = [s for s in ids if any(t.reward is None for t in log.load(s).turns)]
    say(f"{len(ids)} rated session(s) to decompose in {log.db.path}")
    embedder = create_embedder(cfg.thinker.embedder)
    oracle = None if args.no_llm else LLMOracle(_teacher(args, cfg), character=load_character(cfg.character).name)
    results = []
    for sid in ids:
        traj = log.load(sid)
        if traj.rating is None or not traj.turns:
            continue
        descriptors = describe_trajectory(traj, embedder)
        for t in traj.turns:
            log.set_embedding(sid, t.idx, t.embedding)
        r_global = global_reward(traj.rating)
        if oracle is not None:
            rewards, source = oracle(traj, descriptors, r_global)
        else:
            rewards, source = CueOracle()(traj, descriptors, r_global), "cues"
        log.set_rewards(sid, rewards, source, descriptors)
        results.append({"session": sid, "R_global": r_global, "source": source,
                        "sum": round(sum(rewards), 4), "turns": [
                            {"user": t.user_text, "reply": t.reply, "d": d, "R_t": round(r, 4)}
                            for t, d, r in zip(traj.turns, descriptors, rewards, strict=True)]})
    print(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


def _train(args: argparse.Namespace) -> int:
    from mio.thinker.evolve.grpo import settings_from, train
    from mio.thinker.evolve.pairs import read_pairs
    from mio.thinker.evolve.reward import PersonaReward
    from mio.thinker.memory.embed import create_embedder

    cfg = config_from_args(args)
    out = Path(args.out)
    pairs = read_pairs(out / "pairs.jsonl")
    settings = settings_from(args.preset, steps=args.steps, num_generations=args.group,
                             max_completion_length=args.max_tokens, learning_rate=args.lr, beta=args.beta)
    persona = PersonaReward(create_embedder(cfg.thinker.embedder))
    run = out / args.run
    state = train(pairs, run, settings, persona, model_path=args.model, resume=not args.fresh, progress=say)
    print(json.dumps({"run": str(run), "steps": state.steps_done, "seconds": state.seconds,
                      "adapter_gguf": str(run / "adapter.gguf"), "history": state.history}, indent=1))
    say(f"serve it with: mio story ask --set thinker.lora_path={run}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import dataclasses

    from mio.thinker.evolve.evaluate import evaluate_model
    from mio.thinker.evolve.pairs import read_pairs
    from mio.thinker.evolve.reward import PersonaReward
    from mio.thinker.memory.embed import create_embedder

    cfg = config_from_args(args)
    out = Path(args.out)
    pairs = read_pairs(out / "eval_pairs.jsonl")[: args.limit]
    adapter = Path(args.adapter) if args.adapter else out / args.run
    embedder = create_embedder(cfg.thinker.embedder)
    persona = PersonaReward(embedder)
    tcfg = dataclasses.replace(cfg.thinker, temperature=args.temperature)
    result: dict = {"held_apart_pairs": len(pairs), "adapter": str(adapter), "temperature": args.temperature}
    for name, lora in (("before", None), ("after", str(adapter))):
        say(f"{name} self-evolution ({'base model' if lora is None else lora}) ...")
        result[name] = evaluate_model(dataclasses.replace(tcfg, lora_path=lora, lora_scale=args.lora_scale), pairs,
                                      persona, rt_limit=args.rt_limit, progress=say, embedder=embedder)
    b, a = result["before"], result["after"]
    result["delta"] = {"persona_reward_mean": round(a["persona_reward"]["mean"] - b["persona_reward"]["mean"], 4)}
    for k in ("robustness_guards_on", "robustness_guards_off"):
        if k in a and k in b:
            result["delta"][k] = round(a[k]["score"] - b[k]["score"], 4)
    if args.transformers:
        from mio.thinker.evolve.evaluate import evaluate_transformers

        run_dir = adapter if adapter.is_dir() else adapter.parent
        result["transformers"] = evaluate_transformers(pairs, run_dir / "adapter", persona, progress=say)
        result["delta"]["persona_reward_mean_transformers"] = result["transformers"]["delta_persona_reward_mean"]
    summary = {"held_apart_pairs": len(pairs)}
    for name in ("before", "after"):
        summary[name] = {"persona_reward_mean": result[name]["persona_reward"]["mean"],
                         **{k: result[name][k]["score"] for k in ("robustness_guards_on", "robustness_guards_off")
                            if k in result[name]}}
    result["summary"] = {**summary, "delta": result["delta"]}
    return write_bench(result, args.output)


def register(sub, bench_sub, common) -> None:
    e = sub.add_parser("evolve", parents=[common], help="Thinker self-evolution: rewards, self-play pairs, GRPO")
    esub = e.add_subparsers(dest="evolve_cmd", required=True)
    out_help = "folder of pairs, runs and reports (default out/evolve)"

    c = esub.add_parser("collect", parents=[common], help="scenarios (pi_gen) + teacher preference pairs")
    c.add_argument("--n", type=int, default=48, help="training scenarios")
    c.add_argument("--eval-n", type=int, default=16, help="held-apart evaluation scenarios")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--rewrite", action="store_true", help="let the LLM rewrite each scenario in its tone")
    c.add_argument("--teacher-url", help="OpenAI-compatible server for the teacher (default: the Thinker's LLM)")
    c.add_argument("--teacher-model", default="teacher")
    c.add_argument("--out", default="out/evolve", help=out_help)
    c.set_defaults(func=_collect)

    r = esub.add_parser("record", parents=[common], help="log a text conversation as a rated trajectory")
    r.add_argument("text", nargs="+", help="the user's lines")
    r.add_argument("--rating", type=float, default=None, help="post-session rating, 1..5 stars")
    r.add_argument("--audio", nargs="*", help="a wav of the user's voice for each line (prosody)")
    r.add_argument("--image", nargs="*", help="a camera image of the user for each line (smile/gaze)")
    r.add_argument("--user", default="guest")
    r.set_defaults(func=_record)

    w = esub.add_parser("rewards", parents=[common], help="turn rewards R_t of rated sessions (Eq. 19-21)")
    w.add_argument("--session", help="only this session")
    w.add_argument("--rate", help="SESSION:STARS — store a post-session rating first")
    w.add_argument("--redo", action="store_true", help="recompute sessions that already have rewards")
    w.add_argument("--no-llm", action="store_true", help="descriptor rule only (no oracle LLM)")
    w.add_argument("--teacher-url", help="OpenAI-compatible server for the oracle (default: the Thinker's LLM)")
    w.add_argument("--teacher-model", default="oracle")
    w.set_defaults(func=_rewards)

    t = esub.add_parser("train", parents=[common], help="GRPO on LoRA adapters (resumable)")
    t.add_argument("--preset", default="tiny", choices=("tiny", "paper"))
    t.add_argument("--steps", type=int, help="optimiser steps (preset default)")
    t.add_argument("--group", type=int, help="completions per prompt (GRPO group size)")
    t.add_argument("--max-tokens", type=int, help="tokens per completion")
    t.add_argument("--lr", type=float)
    t.add_argument("--beta", type=float, help="KL weight to the reference policy (Eq. 22)")
    t.add_argument("--model", help="backbone GGUF or transformers folder (default: the embedded SmolLM2)")
    t.add_argument("--run", default="run", help="run folder name under --out")
    t.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    t.add_argument("--out", default="out/evolve", help=out_help)
    t.set_defaults(func=_train)

    v = esub.add_parser("eval", parents=[common], help="before/after: persona reward + Robustness score")
    v.add_argument("--adapter", help="run folder or adapter.gguf (default: --out/--run)")
    v.add_argument("--run", default="run")
    v.add_argument("--limit", type=int, default=None, help="only the first N held-apart pairs")
    v.add_argument("--rt-limit", type=int, default=None, help="only the first N Robustness prompts")
    v.add_argument("--temperature", type=float, default=0.0, help="0 = greedy, comparable before/after")
    v.add_argument("--lora-scale", type=float, default=1.0)
    v.add_argument("--transformers", action="store_true",
                   help="also score the policy itself in transformers (fp32, adapter on/off), not only as served")
    v.add_argument("--out", default="out/evolve", help=out_help)
    v.add_argument("-o", "--output", default="out/evolve/eval.json")
    v.set_defaults(func=_eval)
