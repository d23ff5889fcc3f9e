// Mio's page: one WebSocket carries the avatar's JPEG frames, its voice (float32 PCM) and events.
// Audio and video are presented against one clock, the AudioContext's: a frame with session
// time `pts` is drawn, and a voice chunk starts, at ctx time pts + offset, so they stay in sync
// whatever the network does. The offset is a jitter buffer held to the audio clock: it starts at
// JITTER_S after the least-delayed frame, grows when video keeps arriving after its time and
// shrinks when every frame arrives early -- but only while no voice is playing, so speech is
// never shifted, cut or stretched; video waits for the voice, never the other way round.
"use strict";

const AUDIO = 1, VIDEO = 2, HEADER_BYTES = 24;
const JITTER_S = 0.08;        // initial playout delay that absorbs network / render jitter
const MAX_STEP_S = 0.5;        // the largest single re-anchoring of the buffer
const LATE_WINDOW = 50;       // recent video arrivals the buffer adapts to (2 s at 25 fps)
const MARGIN_S = 0.02;        // kept beyond the late tail of those arrivals
const MIC_CHUNK = 1600;       // samples per microphone message (100 ms at 16 kHz)
const MIC_VOICED_RMS = 0.01;  // a microphone block this loud counts as the user's voice (~-40 dBFS)
const AUDIBLE_LEVEL = 0.01;   // first sample this loud is where a voice chunk becomes audible

const $ = (id) => document.getElementById(id);
const ui = {
  character: $("character"), start: $("start"), end: $("end"), storyForm: $("story-form"),
  storyTime: $("story-time"), storySet: $("story-set"), canvas: $("video"), overlay: $("overlay"),
  fps: $("fps"), drift: $("drift"), latency: $("latency"), micLevel: $("mic-level"),
  transcript: $("transcript"), say: $("say"), text: $("text"), send: $("send"), mic: $("mic"),
  stop: $("stop"), status: $("status"), rating: $("rating"), ratingForm: $("rating-form"), comment: $("comment"),
};
const g2d = ui.canvas.getContext("2d");

// Everything a test or a curious user may want to read: window.mio.stats
const stats = {
  connected: false, ready: null, framesReceived: 0, framesDrawn: 0, lastDrawnPts: -1, lastDrawnIndex: -1,
  drift: [], audioChunks: 0, audioSamples: 0, audioScheduled: 0, audioLateSkipped: 0, lastAudioRms: 0,
  playing: 0, outputRms: 0, maxOutputRms: 0, interrupts: 0, lastInterrupt: null, resyncs: 0,
  errors: [], transcript: [], sent: [], firstAudioLatency: [], closed: null, rated: null,
  // send (typed) or end of the user's speech (spoken) -> the reply's first sound plays, in ms
  firstAudible: { typed: [], spoken: [] }, buffer: [], partials: 0,
};
window.mio = { stats, debug: () => ({ now: ctx && ctx.currentTime, offset, queue: videoQueue.map((f) => f.pts) }) };

let ws = null, token = null, ctx = null, master = null, analyser = null, offset = null;
let sources = [];          // {node, start, end, turn}
let videoQueue = [];       // {pts, index, bmp}
let pendingSend = null;    // performance.now() of the last typed message, until its first audio
let pendingTurn = null;    // {at, kind}: start of the wait for the next reply's first sound
let lateness = [];         // recent video arrival lateness against the buffer (s, >0 = after its time)
let partialItem = null;    // transcript <li> of the live caption of the user's utterance
let assistantItem = null;  // transcript <li> of the reply being written
let lastReply = null;      // transcript <li> of the latest reply (it may still be playing)
let mic = null;            // {stream, ctx, node, buf, n}
let lastDrawnAt = [];      // performance.now() of recent draws, for the fps meter

function status(text, isError = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("error", isError);
}

function addLine(role, text) {
  const li = document.createElement("li");
  li.className = role;
  li.textContent = text;
  ui.transcript.appendChild(li);
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
  stats.transcript.push({ role, text });
  return li;
}

function setLive(live) {
  for (const el of [ui.text, ui.send, ui.mic, ui.stop, ui.end, ui.storyTime, ui.storySet]) el.disabled = !live;
  ui.start.disabled = live;
  ui.character.disabled = live;
}

// ---------------------------------------------------------------- start / end

async function loadCharacters() {
  try {
    const r = await fetch("/api/characters");
    const data = await r.json();
    for (const c of data.characters) {
      const opt = new Option(`${c.name}`, c.id, c.id === data.default, c.id === data.default);
      opt.title = c.summary;
      ui.character.add(opt);
    }
  } catch (e) {
    status(`could not list characters: ${e}`, true);
  }
}

async function start() {
  ui.start.disabled = true;
  status("connecting…");
  ctx = ctx || new AudioContext({ latencyHint: "interactive" });
  await ctx.resume();
  master = ctx.createGain();
  analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  master.connect(analyser);
  analyser.connect(ctx.destination);
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  let r;
  try {
    r = await fetch("/api/session", {
      method: "POST", headers: { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ character: ui.character.value }),
    });
  } catch (e) {
    status(`server unreachable: ${e}`, true);
    ui.start.disabled = false;
    return;
  }
  const body = await r.json();
  if (!r.ok) {
    stats.errors.push(body);
    status(body.message || body.error, true);
    ui.overlay.textContent = body.error === "busy" ? body.message : "Could not start.";
    ui.start.disabled = false;
    return;
  }
  token = body.token;
  offset = null;
  videoQueue = [];
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${proto}//${location.host}${body.ws}`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { stats.connected = true; };
  ws.onmessage = (ev) => (typeof ev.data === "string" ? onEvent(JSON.parse(ev.data)) : onMedia(ev.data));
  ws.onclose = (ev) => onClose(ev);
}

function end() {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "end" }));
}

function onClose(ev) {
  stats.connected = false;
  stopAudio();
  stopMic();
  setLive(false);
  ui.overlay.classList.remove("hidden");
  ui.overlay.textContent = "The conversation has ended.";
  if (stats.ready && token) {
    ui.rating.showModal();
  } else {
    status(`disconnected (${ev.code}${ev.reason ? ", " + ev.reason : ""})`, ev.code !== 1000);
  }
  ws = null;
}

async function sendRating(ev) {
  const choice = ui.ratingForm.querySelector("input[name=rating]:checked");
  if (ev.submitter && ev.submitter.value === "skip") return;
  if (!choice) return;
  const r = await fetch("/api/rating", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token, rating: Number(choice.value), comment: ui.comment.value || null }),
  });
  const body = await r.json();
  stats.rated = r.ok ? Number(choice.value) : null;
  status(r.ok ? "Thank you for the rating." : (body.message || "rating failed"), !r.ok);
}

// ---------------------------------------------------------------- events (JSON)

function onEvent(msg) {
  switch (msg.type) {
    case "ready":
      stats.ready = msg;
      setLive(true);
      ui.overlay.classList.add("hidden");
      ui.storyTime.disabled = ui.storySet.disabled = !msg.story_time;
      ui.storyTime.title = msg.story_time ? "" : "this Thinker has no story clock yet";
      addLine("assistant", msg.character.greeting);
      status(`talking with ${msg.character.name}${msg.asr ? "" : " (voice input is off on this server)"}`);
      ui.text.focus();
      break;
    case "user_text":
      if (partialItem) { partialItem.remove(); partialItem = null; stats.transcript.pop(); }
      if (!stats.sent.length || stats.sent[stats.sent.length - 1] !== msg.text) addLine("user", msg.text);
      break;
    case "user_partial":
      stats.partials += 1;
      if (!partialItem) partialItem = addLine("user partial", msg.text);
      partialItem.textContent = msg.text + " …";
      stats.transcript[stats.transcript.length - 1].text = msg.text;
      break;
    case "turn_start":
      assistantItem = lastReply = addLine("assistant", "");
      break;
    case "plan":
      if (!assistantItem) assistantItem = addLine("assistant", "");
      assistantItem.textContent = (assistantItem.textContent + " " + msg.text).trim();
      stats.transcript[stats.transcript.length - 1].text = assistantItem.textContent;
      break;
    case "turn_end":
      assistantItem = null;
      break;
    case "interrupt":
      stats.interrupts += 1;
      stats.lastInterrupt = { at: performance.now(), heard: msg.heard_text };
      if (assistantItem || audioPlaying()) markCut();
      stopAudio();
      assistantItem = null;
      break;
    case "vad":
      ui.micLevel.textContent = msg.state === "speech" ? "listening…" : "";
      if (msg.state === "end" && msg.turn) {
        // A spoken turn: the wait counts from the end of the user's speech as this page heard it.
        pendingTurn = { at: (mic && mic.lastVoicedAt) || performance.now(), kind: "spoken" };
      } else if (msg.state === "end" && partialItem) {
        partialItem.remove(); partialItem = null; stats.transcript.pop();
      }
      break;
    case "story_time":
      status(`story time set to ${msg.value}`);
      break;
    case "error":
      stats.errors.push(msg);
      status(msg.message, true);
      break;
    case "closed":
      stats.closed = msg;
      break;
  }
}

// ---------------------------------------------------------------- media (binary)

function onMedia(buf) {
  const head = new DataView(buf, 0, HEADER_BYTES);
  const kind = head.getUint8(0), aux1 = head.getUint32(4, true), aux2 = head.getUint32(8, true);
  const pts = head.getFloat64(16, true);
  if (kind === VIDEO) onVideo(buf, pts, aux1);
  else if (kind === AUDIO) onAudio(buf, pts, aux1, aux2);
}

function onVideo(buf, pts, index) {
  stats.framesReceived += 1;
  const arrival = ctx.currentTime - pts;  // this frame's delay against the session clock
  if (offset === null) offset = arrival + JITTER_S;
  lateness.push(arrival - offset);
  if (lateness.length > LATE_WINDOW) lateness.shift();
  adaptBuffer();
  createImageBitmap(new Blob([new Uint8Array(buf, HEADER_BYTES)], { type: "image/jpeg" }))
    .then((bmp) => {
      let i = videoQueue.length;  // decodes may finish out of order: keep the queue sorted by pts
      while (i > 0 && videoQueue[i - 1].pts > pts) i--;
      videoQueue.splice(i, 0, { pts, index, bmp });
      if (videoQueue.length > 60) videoQueue.shift().bmp.close();
    })
    .catch((e) => stats.errors.push({ code: "decode", message: String(e) }));
}

// The jitter buffer follows the late tail (P95) of recent video arrivals, changed only in silence:
// a tail that misses its time delays the clock by what it missed; a buffer that holds every frame
// longer than needed gives the excess back 20 ms at a time.
function adaptBuffer() {
  if (audioPlaying() || lateness.length < 10) return;
  const sorted = [...lateness].sort((a, b) => a - b);
  const tail = sorted[Math.floor(0.95 * (sorted.length - 1))] + MARGIN_S;
  let step = 0;
  if (tail > 0.005) step = Math.min(tail, MAX_STEP_S);
  else if (tail < -0.02) step = -0.02;
  if (!step) return;
  offset += step;
  lateness = lateness.map((x) => x - step);
  stats.resyncs += 1;
  stats.buffer.push({ at: performance.now(), step: Number(step.toFixed(4)) });
  if (stats.buffer.length > 100) stats.buffer.shift();
}

function onAudio(buf, pts, sampleRate, turn) {
  const n = (buf.byteLength - HEADER_BYTES) / 4;
  const samples = new Float32Array(buf, HEADER_BYTES, n);
  stats.audioChunks += 1;
  stats.audioSamples += n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += samples[i] * samples[i];
  stats.lastAudioRms = Math.sqrt(sq / Math.max(1, n));
  if (pendingSend !== null) {
    stats.firstAudioLatency.push(performance.now() - pendingSend);  // arrival of the first chunk
    pendingSend = null;
  }
  if (offset === null) offset = ctx.currentTime - pts + JITTER_S;
  if (pendingTurn !== null) {
    let lead = 0;
    while (lead < n && Math.abs(samples[lead]) < AUDIBLE_LEVEL) lead++;
    const audibleAt = performance.now() + 1000 * (Math.max(pts + offset, ctx.currentTime) - ctx.currentTime + lead / sampleRate);
    const ms = audibleAt - pendingTurn.at;
    stats.firstAudible[pendingTurn.kind].push(ms);
    ui.latency.textContent = `first audio ${(ms / 1000).toFixed(2)} s (${pendingTurn.kind})`;
    pendingTurn = null;
  }
  const audioBuf = ctx.createBuffer(1, n, sampleRate);
  audioBuf.copyToChannel(samples, 0);
  const node = ctx.createBufferSource();
  node.buffer = audioBuf;
  node.connect(master);
  const when = pts + offset, now = ctx.currentTime, dur = n / sampleRate;
  if (when + dur <= now) { stats.audioLateSkipped += 1; return; }
  if (when >= now) node.start(when);
  else node.start(now, now - when);  // late: join at the right place, keep lips in sync
  const entry = { node, start: when, end: when + dur, turn };
  sources.push(entry);
  node.onended = () => { sources = sources.filter((s) => s !== entry); };
  stats.audioScheduled += 1;
}

function audioPlaying() {
  return !!ctx && sources.some((s) => s.end > ctx.currentTime);
}

function markCut() {
  if (lastReply) lastReply.classList.add("interrupted");
}

function stopAudio() {
  for (const s of sources) {
    try { s.node.stop(); } catch (e) { /* already stopped */ }
    s.node.disconnect();
  }
  sources = [];
}

// ---------------------------------------------------------------- the frame loop

function frameLoop() {
  requestAnimationFrame(frameLoop);
  if (!ctx) return;
  const now = ctx.currentTime;
  let due = null;
  while (videoQueue.length && videoQueue[0].pts + offset <= now) {
    if (due) due.bmp.close();
    due = videoQueue.shift();
  }
  if (due) {
    g2d.drawImage(due.bmp, 0, 0, ui.canvas.width, ui.canvas.height);
    due.bmp.close();
    const drift = now - (due.pts + offset);  // >0: drawn after its time on the audio clock
    stats.drift.push(drift);
    if (stats.drift.length > 500) stats.drift.shift();
    stats.framesDrawn += 1;
    stats.lastDrawnPts = due.pts;
    stats.lastDrawnIndex = due.index;
    const t = performance.now();
    lastDrawnAt.push(t);
    while (lastDrawnAt.length && t - lastDrawnAt[0] > 2000) lastDrawnAt.shift();
  }
  if (analyser) {
    const data = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(data);
    let sq = 0;
    for (let i = 0; i < data.length; i++) sq += data[i] * data[i];
    stats.outputRms = Math.sqrt(sq / data.length);
    stats.maxOutputRms = Math.max(stats.maxOutputRms, stats.outputRms);
  }
  stats.playing = sources.filter((s) => s.end > now).length;
}

setInterval(() => {
  ui.fps.textContent = `${(lastDrawnAt.length / 2).toFixed(1)} fps`;
  if (stats.drift.length) {
    const d = [...stats.drift].map(Math.abs).sort((a, b) => a - b);
    ui.drift.textContent = `drift p95 ${(1000 * d[Math.floor(0.95 * (d.length - 1))]).toFixed(0)} ms`;
  }
}, 500);

// ---------------------------------------------------------------- user input

function sendText(ev) {
  ev.preventDefault();
  const text = ui.text.value.trim();
  if (!text || !ws) return;
  if (audioPlaying()) markCut();
  stopAudio();  // barge-in: silence at once; the server's Interrupt follows
  stats.sent.push(text);
  addLine("user", text);
  pendingSend = performance.now();
  pendingTurn = { at: pendingSend, kind: "typed" };
  ws.send(JSON.stringify({ type: "text", text }));
  ui.text.value = "";
}

function interrupt() {
  if (audioPlaying()) markCut();
  stopAudio();
  if (ws) ws.send(JSON.stringify({ type: "interrupt" }));
}

function setStoryTime(ev) {
  ev.preventDefault();
  const raw = ui.storyTime.value.trim();
  if (!raw || !ws) return;
  const value = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
  ws.send(JSON.stringify({ type: "story_time", value }));
}

async function toggleMic() {
  if (mic) { stopMic(); return; }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    const mctx = new AudioContext({ sampleRate: 16000 });
    await mctx.audioWorklet.addModule("/static/mic-worklet.js");
    const node = new AudioWorkletNode(mctx, "mic-tap");
    mctx.createMediaStreamSource(stream).connect(node);
    mic = { stream, ctx: mctx, node, buf: new Int16Array(MIC_CHUNK), n: 0, peak: 0, lastVoicedAt: null };
    ws.send(JSON.stringify({ type: "mic", on: true, sample_rate: mctx.sampleRate }));
    node.port.onmessage = (ev) => onMicBlock(ev.data);
    ui.mic.classList.add("on");
    status("microphone on: just talk");
  } catch (e) {
    status(`microphone unavailable: ${e.message || e}`, true);
    stats.errors.push({ code: "mic", message: String(e) });
  }
}

function onMicBlock(block) {
  if (!mic || !ws || ws.readyState !== WebSocket.OPEN) return;
  let sq = 0;
  for (let i = 0; i < block.length; i++) sq += block[i] * block[i];
  if (Math.sqrt(sq / Math.max(1, block.length)) >= MIC_VOICED_RMS) mic.lastVoicedAt = performance.now();
  for (let i = 0; i < block.length; i++) {
    const v = Math.max(-1, Math.min(1, block[i]));
    mic.buf[mic.n++] = v < 0 ? v * 32768 : v * 32767;
    if (mic.n === MIC_CHUNK) {
      ws.send(mic.buf.buffer.slice(0));
      mic.n = 0;
    }
  }
}

function stopMic() {
  if (!mic) return;
  mic.stream.getTracks().forEach((t) => t.stop());
  mic.ctx.close();
  mic = null;
  ui.mic.classList.remove("on");
  ui.micLevel.textContent = "";
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "mic", on: false }));
}

ui.start.addEventListener("click", start);
ui.end.addEventListener("click", end);
ui.say.addEventListener("submit", sendText);
ui.stop.addEventListener("click", interrupt);
ui.mic.addEventListener("click", toggleMic);
ui.storyForm.addEventListener("submit", setStoryTime);
ui.ratingForm.addEventListener("submit", sendRating);
loadCharacters();
requestAnimationFrame(frameLoop);
