// The Switchboard call page: OpenAI's Realtime WebRTC flow against this gateway.
// A one-call client secret from /call-page/secret, an SDP offer to /v1/realtime/calls,
// Realtime events on the "oai-events" data channel, reply audio on the remote track.
"use strict";

const $ = (id) => document.getElementById(id);
// What a test (or a curious user in the console) can read about the call.
const stats = (window.callStats = {
  state: "idle", events: [], turns: [], remotePeak: 0, remoteLoudFrames: 0, error: null,
});
let call = null;

function setStatus(text) { $("status").textContent = text; }

function line(role, text) {
  const li = document.createElement("li");
  li.className = role;
  li.textContent = text;
  $("transcript").appendChild(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function meter(stream, onLevel) {
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let peak = 0;
    for (const x of buf) peak = Math.max(peak, Math.abs(x));
    onLevel(peak);
  }, 50);
  return () => { clearInterval(timer); ctx.close(); };
}

// "semantic_vad:auto" -> {type: "semantic_vad", eagerness: "auto"}; "server_vad" -> {type}.
function turnDetection(choice) {
  const [type, eagerness] = choice.split(":");
  return eagerness ? { type, eagerness } : { type };
}

async function start() {
  $("call").disabled = true;
  setStatus("Getting a call token…");
  stats.state = "connecting";
  const secret = await fetch("/call-page/secret", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      persona: $("persona").value.trim(),
      user: $("user").value.trim(),
      turn_detection: turnDetection($("turns").value),
    }),
  });
  if (!secret.ok) throw new Error((await secret.json()).error?.message || secret.statusText);
  const { value } = await secret.json();

  const pc = new RTCPeerConnection();
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  pc.addTrack(mic.getAudioTracks()[0], mic);
  const stops = [meter(mic, (p) => { $("level").style.width = `${Math.min(100, p * 140)}%`; })];
  pc.ontrack = (e) => {
    const stream = e.streams[0] || new MediaStream([e.track]);
    $("remote").srcObject = stream;
    stops.push(meter(stream, (p) => {
      stats.remotePeak = Math.max(stats.remotePeak, p);
      if (p > 0.02) stats.remoteLoudFrames += 1;
    }));
  };
  const dc = pc.createDataChannel("oai-events");
  call = { pc, mic, dc, stops, current: null, stoppedAt: null };
  dc.onmessage = (m) => onEvent(JSON.parse(m.data));
  dc.onclose = () => hangUp("The call ended.");
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected") { stats.state = "connected"; setStatus("Connected: speak."); }
    if (pc.connectionState === "failed") hangUp("The connection failed.");
  };

  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  setStatus("Calling…");
  const answer = await fetch("/v1/realtime/calls", {
    method: "POST",
    body: offer.sdp,
    headers: { authorization: `Bearer ${value}`, "content-type": "application/sdp" },
  });
  if (!answer.ok) throw new Error((await answer.json()).error?.message || answer.statusText);
  await pc.setRemoteDescription({ type: "answer", sdp: await answer.text() });
  $("hangup").disabled = false;
}

function onEvent(ev) {
  stats.events.push(ev.type);
  switch (ev.type) {
    case "input_audio_buffer.speech_stopped":
      call.stoppedAt = performance.now();
      break;
    case "conversation.item.input_audio_transcription.completed":
      if (ev.transcript.trim()) line("user", ev.transcript.trim());
      stats.turns.push({ role: "user", text: ev.transcript });
      break;
    case "response.output_audio_transcript.delta":
    case "response.output_text.delta":
      if (!call.current) call.current = { li: line("assistant", ""), text: "" };
      call.current.text += ev.delta;
      call.current.li.firstChild
        ? (call.current.li.firstChild.textContent = call.current.text)
        : call.current.li.append(document.createTextNode(call.current.text));
      break;
    case "response.output_audio_transcript.done":
      // After an interruption this is what the caller actually heard.
      if (call.current) {
        call.current.text = ev.transcript;
        call.current.li.firstChild.textContent = ev.transcript;
      }
      break;
    case "output_audio_buffer.started":
      if (call.stoppedAt !== null && call.current) {
        const ms = Math.round(performance.now() - call.stoppedAt);
        const tag = document.createElement("span");
        tag.className = "latency";
        tag.textContent = `replied ${ms} ms after you stopped`;
        call.current.li.appendChild(tag);
        stats.turns.push({ role: "latency", ms });
      }
      break;
    case "output_audio_buffer.cleared":
      if (call.current) call.current.li.classList.add("interrupted");
      break;
    case "response.done": {
      const text = call.current ? call.current.text : "";
      stats.turns.push({ role: "assistant", text, status: ev.response.status });
      call.current = null;
      call.stoppedAt = null;
      break;
    }
    case "error":
      console.warn("realtime error", ev.error);
      break;
  }
}

function hangUp(message) {
  if (!call) return;
  const c = call;
  call = null;
  c.stops.forEach((s) => s());
  c.mic.getTracks().forEach((t) => t.stop());
  c.pc.close();
  stats.state = "ended";
  setStatus(message || "Hung up.");
  $("call").disabled = false;
  $("hangup").disabled = true;
}

$("call").onclick = () => start().catch((e) => {
  stats.error = String(e.message || e);
  hangUp(`Could not call: ${stats.error}`);
  if (!call) { stats.state = "failed"; $("call").disabled = false; }
});
$("hangup").onclick = () => hangUp("Hung up.");
