"""espeak-ng: the last-resort embedded voice (Debian package, formant synthesis, 22.05 kHz).

Robotic but always available and very fast. Runs the `espeak-ng` CLI per clause, reading the text
from stdin and the WAV from stdout. Emotion maps to its rate (-s, words per minute) and pitch
(-p, 0-99) options.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np

from mio.core.config import TalkerConfig
from mio.core.errors import BackendError, ConfigError
from mio.talker.text import espeak_binary
from mio.talker.voices._common import EmbeddedVoice, Prosody

DEFAULT_VOICE = "en-us"
BASE_WPM = 175  # espeak-ng's default rate
BASE_PITCH = 50  # espeak-ng's default pitch (0-99)
_VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+\-]*$")


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV bytes -> (float32 samples, rate). Tolerates the bogus sizes a pipe writer leaves."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise BackendError("espeak-ng did not write a WAV file")
    pos, rate, width, channels = 12, 0, 0, 1
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if cid == b"fmt ":
            channels = int.from_bytes(data[body + 2 : body + 4], "little")
            rate = int.from_bytes(data[body + 4 : body + 8], "little")
            width = int.from_bytes(data[body + 14 : body + 16], "little") // 8
        elif cid == b"data":
            if width != 2 or rate <= 0:
                raise BackendError(f"espeak-ng wrote an unsupported WAV ({width * 8}-bit, {rate} Hz)")
            pcm = data[body : body + min(size, len(data) - body)]
            pcm = pcm[: len(pcm) // (2 * channels) * 2 * channels]
            x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
            return x.reshape(-1, channels).mean(axis=1), rate
        pos = body + size + (size & 1)
    raise BackendError("espeak-ng's WAV has no data chunk")


class EspeakVoice(EmbeddedVoice):
    name = "espeak"

    def __init__(self, config: TalkerConfig | None = None) -> None:
        super().__init__(config)
        exe = espeak_binary()
        if exe is None:
            raise BackendError(
                "the espeak voice needs the espeak-ng program (Debian: apt-get install espeak-ng)"
            )
        self._exe = exe
        self.voice = self.config.voice or DEFAULT_VOICE
        if not _VOICE_NAME.match(self.voice):
            raise ConfigError(
                f"talker.voice {self.voice!r} is not an espeak-ng voice name (e.g. en-us, en-gb+f3)"
            )
        probe = subprocess.run([exe, "-q", "-v", self.voice, "x"], capture_output=True, text=True, timeout=10)
        if probe.returncode != 0 or "not found" in probe.stderr.lower():
            raise BackendError(f"espeak-ng has no voice {self.voice!r}: {probe.stderr.strip()[:200]}")

    def _render(self, text: str, prosody: Prosody) -> tuple[np.ndarray, int]:
        wpm = int(round(min(max(BASE_WPM * prosody.speed, 80), 450)))
        pitch = int(round(min(max(BASE_PITCH * prosody.pitch, 0), 99)))
        try:
            res = subprocess.run(
                [self._exe, "--stdout", "-v", self.voice, "-s", str(wpm), "-p", str(pitch)],
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BackendError(f"espeak-ng failed to run: {e}") from e
        if res.returncode != 0:
            raise BackendError(
                f"espeak-ng exited with {res.returncode}: {res.stderr.decode(errors='replace')[:200]}"
            )
        return parse_wav(res.stdout)
