"""What every `mio` command shares: its config, progress lines, the models of a session, JSON results.

    cfg = config_from_args(args)          # defaults, then --config FILE, then --character and --set
    say("loading ...")                    # a dim progress line on stderr (logging, logger "mio")
    write_bench(result, "out/bench/x.json")

Progress and warnings go through `logging` (mio.core.log): library code logs to `mio.*` loggers and
`mio.cli.main` shows their progress lines too, dim and tagged `[mio <command>]`; warnings read
`mio: warning: ...`. What a command prints as its result goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from mio.core import atomic
from mio.core.errors import InputError

log = logging.getLogger("mio.cli")


def say(msg: str) -> None:
    """A progress line for the user (stderr, dim)."""
    log.info(msg)


def config_from_args(args: argparse.Namespace):
    """The MioConfig for a command: defaults, then --config FILE, then --character and --set."""
    from mio.core.config import load_config

    overrides = list(getattr(args, "set", None) or [])
    if getattr(args, "character", None):
        overrides.append(f"character={args.character}")
    return load_config(getattr(args, "config", None), overrides)


def load_models(cfg, *, asr: bool = False):
    """Every model of a session, loaded once, with a progress line per stage."""
    from mio.runtime.session import Models

    t0 = time.perf_counter()
    models = Models(cfg, asr=asr, progress=say)
    say(f"models ready in {time.perf_counter() - t0:.1f} s "
        f"({', '.join(f'{k} {v:.1f}s' for k, v in models.load_times.items())})")
    return models


def check_text(text: str, cfg) -> str:
    """The user's line as the Thinker will check it (mio.thinker.Thinker.check_input), before any
    model is loaded."""
    text = (text or "").strip()
    if not text:
        raise InputError("the text is empty; say something, e.g. mio say \"Hello, who are you?\"")
    limit = cfg.thinker.max_input_chars
    if len(text) > limit:
        raise InputError(f"the text has {len(text)} characters; the limit is {limit} (thinker.max_input_chars)")
    return text


def check_at_least(args: argparse.Namespace, **minimums: int) -> None:
    """A one-line InputError for a count option below its minimum (`--turns 0`, `--frames -1`),
    before anything loads. Options left at None are not checked."""
    for name, low in minimums.items():
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise InputError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")


def write_bench(result: dict, output: str) -> int:
    """A benchmark's result as JSON (atomically), its summary on stdout."""
    out = atomic.write_text(output, json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {out}")
    return 0
