// The browser side: a WebRTC call whose SDP the backend answers, and the backend's view of
// the call (transcripts, tool calls) as server-sent events. No library, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
let runId = null;
let peer = null;
let events = null;

function setState(text) {
  $("state").textContent = text;
}

function show(listId, text, className) {
  const item = document.createElement("li");
  item.textContent = text;
  if (className) item.className = className;
  $(listId).appendChild(item);
}

async function localAudio(pc) {
  // A microphone when there is one; otherwise the call still negotiates audio.
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    stream.getTracks().forEach((track) => pc.addTrack(track, stream));
  } catch (error) {
    pc.addTransceiver("audio", { direction: "sendrecv" });
  }
}

function follow(id) {
  events = new EventSource(`/api/sessions/${id}/events`);
  events.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.kind === "transcript") {
      show("transcript", `${event.role}: ${event.text}`, event.role);
    } else if (event.kind === "tool") {
      show("tools", `${event.name}(${JSON.stringify(event.arguments)})`);
    } else if (event.kind === "tool_result") {
      show("tools", `-> ${event.output}`);
    } else if (event.kind === "ready") {
      setState("connected");
      $("text").disabled = false;
      $("send").disabled = false;
    } else if (event.kind === "ended") {
      setState("ended");
      events.close();
    }
  };
}

async function start() {
  $("start").disabled = true;
  setState("starting");
  const created = await fetch("/api/sessions", { method: "POST" });
  runId = (await created.json()).id;
  follow(runId);

  peer = new RTCPeerConnection();
  peer.ontrack = (event) => { $("remote").srcObject = event.streams[0]; };
  peer.createDataChannel("oai-events");
  await localAudio(peer);
  const offer = await peer.createOffer();
  await peer.setLocalDescription(offer);

  // The backend creates the call with its own configuration and tools.
  const response = await fetch(`/api/sessions/${runId}/sdp`, {
    method: "POST",
    body: offer.sdp,
    headers: { "Content-Type": "application/sdp" },
  });
  const answer = await response.text();
  $("answer").textContent = answer;
  try {
    await peer.setRemoteDescription({ type: "answer", sdp: answer });
  } catch (error) {
    show("transcript", `(the browser refused the answer: ${error})`);
  }
  $("stop").disabled = false;
}

async function say(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text || !runId) return;
  $("text").value = "";
  await fetch(`/api/sessions/${runId}/text`, {
    method: "POST",
    body: JSON.stringify({ text }),
    headers: { "Content-Type": "application/json" },
  });
}

async function stop() {
  $("stop").disabled = true;
  if (runId) await fetch(`/api/sessions/${runId}`, { method: "DELETE" });
  if (peer) peer.close();
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
$("say").addEventListener("submit", say);
