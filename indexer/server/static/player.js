// The player: plays a take from a line's start less the pre-roll, shows the current frame's source
// timecode, J/K/L shuttle, arrow-key frame steps, line loop, next/previous hit.
"use strict";

async function api(url, signal) {
  const r = await fetch(url, { credentials: "same-origin", signal });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

// A change to the index (circle a take, name a voice ...): JSON in, JSON out; errors are one sentence.
async function post(url, body, method) {
  const r = await fetch(url, { method: method || "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}) });
  let out = null;
  try { out = await r.json(); } catch (e) { out = null; }
  if (!r.ok) throw new Error((out && out.error) || `${r.status} ${r.statusText}`);
  return out;
}

// The review notes that belong to a line or hit: those at, or over a stretch that reaches, a second before its
// start to a second after its end.
function notesNear(notes, start, end) {
  return (notes || []).filter(n => (n.end_seconds != null ? n.end_seconds : n.seconds) >= start - 1 && n.seconds <= end + 1);
}

// Where a note is: its TC, or first-last TC for a note over a stretch (as `dailies notes list`).
function noteWhen(n) { return n.tc + (n.tc_end ? `-${n.tc_end}` : ""); }

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// wdiff notation -> HTML: [-not said-] struck through, {+said, not written+} underlined.
function diffHtml(diff, text) {
  if (!diff) return esc(text);
  return esc(diff)
    .replace(/\[-(.*?)-\]/g, '<del title="in the script, not said">$1</del>')
    .replace(/\{\+(.*?)\+\}/g, '<ins title="said, not in the script">$1</ins>');
}

class Player {
  constructor(root) {
    this.root = root;
    this.preRoll = parseFloat(root.dataset.preRoll || "1");
    this.video = root.querySelector("#video");
    this.audio = root.querySelector("#audio");
    this.tcEl = root.querySelector("#tc");
    this.nameEl = root.querySelector("#clipname");
    this.noteEl = root.querySelector("#media-note");
    this.loopEl = root.querySelector("#loop");
    this.wave = root.querySelector("#wave");
    this.takes = {};
    this.take = null;
    this.hit = null;
    this.hits = [];
    this.pos = -1;
    this.reverse = null;
    this.onHit = null;
    this.onNotes = null;          // called after a note is added or deleted here
    this.onNotesRead = null;      // called with the take's notes each time they are read
    root.querySelector("#playpause").addEventListener("click", () => this.toggle());
    root.querySelector("#back1").addEventListener("click", () => this.step(-1));
    root.querySelector("#fwd1").addEventListener("click", () => this.step(1));
    root.querySelector("#prev").addEventListener("click", () => this.go(-1));
    root.querySelector("#next").addEventListener("click", () => this.go(1));
    for (const el of [this.video, this.audio]) {
      el.addEventListener("timeupdate", () => this.tick());
      el.addEventListener("seeked", () => this.tick());
      el.addEventListener("play", () => this.label());
      el.addEventListener("pause", () => this.label());
      el.addEventListener("error", () => this.note("This take's media cannot be played (missing, offline or not yet proxied)."));
    }
    this.initNotes();
    this.circleBtn = root.querySelector("#circle-take");
    this.onCircle = null;         // called with the take as `dailies circle --json` answers, after a change here
    if (this.circleBtn) this.circleBtn.addEventListener("click", () => this.toggleCircle());
    const frameLoop = () => { this.tick(); requestAnimationFrame(frameLoop); };
    requestAnimationFrame(frameLoop);
    document.addEventListener("keydown", e => this.key(e));
  }
  get el() { return this.take && this.take.media_kind === "audio" ? this.audio : this.video; }
  note(msg) { this.noteEl.textContent = msg || ""; }
  label() { this.root.querySelector("#playpause").textContent = this.el.paused ? "play" : "pause"; }

  async loadTake(takeId) {
    if (!this.takes[takeId]) this.takes[takeId] = await api(`/api/takes/${encodeURIComponent(takeId)}`);
    const t = this.takes[takeId];
    if (!this.take || this.take.take_id !== takeId) {
      this.take = t;
      this.rate = TC.parseRate(t.rate);
      this.markFrom(null);
      const audioOnly = t.media_kind === "audio";
      this.video.hidden = audioOnly;
      this.wave.hidden = !audioOnly;
      this.audio.hidden = !audioOnly;
      this.audio.controls = false;
      const other = audioOnly ? this.video : this.audio;
      other.pause(); other.removeAttribute("src"); other.load();
      this.el.src = t.media_url;
      this.nameEl.textContent = `${t.name}  ·  ${t.rate} fps  ·  start ${t.start_tc}`;
      this.note(t.media_missing ? "The media of this take is missing (moved or offline); its transcript is below." :
                t.media_pending ? "Making a browser proxy of this take…" : "");
      this.listenTo(t);
      if (audioOnly) this.drawWave();
      const link = this.root.querySelector("#takelink");
      if (link) link.href = `/take/${t.take_id}`;
      this.loadNotes();
    }
    this.showCircle();
    return t;
  }

  // A sound take of several channels (a recorder's poly WAV): hear one alone, e.g. an actor's iso under an overlap.
  // Each channel is a mono proxy made when first asked for; the position and play state carry over.
  listenTo(t) {
    const wrap = this.root.querySelector("#listen-wrap"), sel = this.root.querySelector("#listen");
    if (!wrap || !sel) return;
    const n = t.media_kind === "audio" ? (t.sound_channels || 0) : 0;
    wrap.hidden = n < 2;
    if (n < 2) return;
    const roles = {};
    for (const c of t.channels || []) roles[c.channel] = c;
    sel.innerHTML = `<option value="">all channels</option>` + Array.from({ length: n }, (_, k) => {
      const c = roles[k + 1];
      const what = c ? (c.role === "iso" ? `${c.owner || c.name || "iso"} (iso)` : (c.name || c.role).toUpperCase()) : "";
      return `<option value="${k + 1}">${k + 1}${what ? " " + esc(what) : ""}</option>`;
    }).join("");
    if (!sel.dataset.bound) {
      sel.dataset.bound = "1";
      sel.addEventListener("change", () => this.switchChannel(sel.value));
    }
  }
  async switchChannel(ch) {
    const el = this.audio, t = el.currentTime, playing = !el.paused;
    el.pause();
    el.src = this.take.media_url + (ch ? `?channel=${encodeURIComponent(ch)}` : "");
    await new Promise(res => el.addEventListener("loadedmetadata", res, { once: true }));
    el.currentTime = t;
    await new Promise(res => el.addEventListener("seeked", res, { once: true }));
    if (playing) this.play();
    this.drawWave();
  }

  // Circle (print) the take playing, or take its circle off: the script supervisor's pick, from any page's player.
  showCircle() {
    const b = this.circleBtn;
    if (!b || !this.take || b.dataset.readOnly === "true" || b.dataset.off === "true") return;
    b.hidden = false;
    b.textContent = this.take.circled ? "● circled" : "◯ circle";
    b.classList.toggle("on", !!this.take.circled);
    b.title = this.take.circled ? `Circled${this.take.circle_note ? ": " + this.take.circle_note : ""}; click to take the circle off`
      : "Circle (print) this take";
  }
  async toggleCircle() {
    const take = this.take;
    if (!take) return;
    try {
      const done = await post(`/api/takes/${encodeURIComponent(take.take_id)}/circle`, { circled: !take.circled });
      take.circled = done.circled;
      take.circle_note = done.circle_note;
      this.showCircle();
      this.note("");
      if (this.onCircle) this.onCircle(done);
    } catch (err) { this.note(err.message); }
  }

  // Review notes at a frame of the take (`dailies notes`): the team's, listed under the player; typing one
  // pauses the take, and the note goes at the frame shown. A click on a note's TC goes to its frame.
  initNotes() {
    this.noteForm = this.root.querySelector("#noteform");
    this.notesEl = this.root.querySelector("#notes");
    if (!this.noteForm || !this.notesEl) return;
    this.readOnly = this.noteForm.dataset.readOnly === "true";
    const text = this.root.querySelector("#note-text"), author = this.root.querySelector("#note-author");
    this.noteFromEl = this.root.querySelector("#note-from");
    if (this.noteFromEl) this.noteFromEl.addEventListener("click", () => this.markFrom(null));
    try { author.value = localStorage.getItem("dailies.author") || ""; } catch (e) { /* storage off */ }
    text.addEventListener("focus", () => { if (this.take) this.pause(); });
    this.noteForm.addEventListener("submit", async e => {
      e.preventDefault();
      if (!this.take || !text.value.trim()) return;
      try { localStorage.setItem("dailies.author", author.value.trim()); } catch (err) { /* storage off */ }
      const take = this.take;
      const at = this.noteFrom != null ? { frame: this.noteFrom, end_frame: this.frame() } : { frame: this.frame() };
      try {
        await post(`/api/takes/${encodeURIComponent(take.take_id)}/notes`,
          { ...at, text: text.value, author: author.value.trim() || null });
        text.value = "";
        this.markFrom(null);
        this.note("");
        await this.loadNotes();
        if (this.onNotes) this.onNotes();
      } catch (err) { this.note(err.message); }
    });
    // Others' notes appear without reloading: the list is read again every 10 s while the page is shown.
    setInterval(() => { if (!document.hidden && this.take) this.loadNotes(); }, 10000);
    this.notesEl.addEventListener("click", async e => {
      const li = e.target.closest("li[data-frame]");
      if (!li) return;
      if (e.target.closest(".ndel")) {
        const r = await fetch(`/api/notes/${encodeURIComponent(li.dataset.id)}`, { method: "DELETE", credentials: "same-origin" });
        if (!r.ok) { let b = null; try { b = await r.json(); } catch (err) { b = null; } this.note((b && b.error) || `${r.status}`); }
        await this.loadNotes();
        if (this.onNotes) this.onNotes();
      } else if (e.target.closest(".ntext") && !this.readOnly) {
        this.editNote(li);
      } else if (e.target.closest(".ntc")) {
        this.pause();
        await this.seek(TC.secondsOf(parseInt(li.dataset.frame, 10), this.rate) + 1e-4);
      }
    });
  }
  // I marks where a stretch starts: the next note covers it to the frame shown when the note is added
  // (either way round). A click on the mark, or another take, forgets it.
  markFrom(frame) {
    this.noteFrom = frame;
    if (!this.noteFromEl) return;
    this.noteFromEl.hidden = frame == null;
    this.noteFromEl.textContent = frame == null ? "" :
      `from ${TC.toTc(this.take.start_frame + frame, this.rate, this.take.drop_frame)} ×`;
    const text = this.root.querySelector("#note-text");
    if (text) text.placeholder = frame == null ? "note at this frame (Enter adds it)" : "note from there to the frame shown (Enter adds it)";
  }
  // A click on a note's text edits it in place: Enter keeps the change, Esc (or a click elsewhere) drops it.
  editNote(li) {
    const span = li.querySelector(".ntext");
    if (!span || this.editing) return;
    const input = document.createElement("input");
    input.className = "nedit";
    input.maxLength = 2000;
    input.value = span.textContent;
    span.replaceWith(input);
    this.editing = true;
    input.focus();
    const done = async save => {
      if (!this.editing) return;
      this.editing = false;
      const text = input.value.trim();
      if (save && text && text !== span.textContent) {
        try { await post(`/api/notes/${encodeURIComponent(li.dataset.id)}`, { text }, "PATCH"); this.note(""); }
        catch (err) { this.note(err.message); }
      }
      this.notesHtml = null;                    // drawn again: the text as it now is
      await this.loadNotes();
      if (this.onNotes) this.onNotes();
    };
    input.addEventListener("keydown", e => {
      if (e.key === "Enter") { e.preventDefault(); done(true); }
      else if (e.key === "Escape") { e.preventDefault(); done(false); }
    });
    input.addEventListener("blur", () => done(false));
  }
  async loadNotes() {
    if (!this.notesEl || !this.take || this.editing) return;     // not under the hands of someone editing
    const take = this.take;
    this.noteForm.hidden = this.readOnly;
    let rows = [];
    try { rows = await api(`/api/notes?${new URLSearchParams({ take: take.take_id })}`); } catch (e) { rows = []; }
    if (this.take !== take) return;
    const html = rows.map(n => `<li data-id="${n.note_id}" data-frame="${n.frame}">
      <span class="ntc" title="go to this frame">${esc(noteWhen(n))}</span>${n.author ? `<span class="nby">${esc(n.author)}</span>` : ""}
      <span class="ntext"${this.readOnly ? "" : ` title="click to edit${n.edited_at ? "; edited " + esc(n.edited_at) : ""}"`}>${esc(n.text)}</span>${this.readOnly ? "" : `<button class="ndel" title="delete this note">×</button>`}</li>`).join("");
    if (html !== this.notesHtml) this.notesEl.innerHTML = this.notesHtml = html;      // unchanged: left as it is
    if (this.onNotesRead) this.onNotesRead(rows);
  }

  // Play hits[i]: from its start less the pre-roll.
  async playHit(hits, i) {
    this.hits = hits; this.pos = i;
    const hit = hits[i];
    this.hit = hit;
    await this.loadTake(hit.take_id);
    const info = this.root.querySelector("#hitinfo");
    if (info) info.innerHTML = `<b>${esc(hit.name)}</b> sc ${esc(hit.scene || "–")} tk ${esc(hit.take || "–")} ` +
      `<span class="tcs">${esc(hit.tc_in)}${hit.tc_out && hit.tc_out !== hit.tc_in ? " – " + esc(hit.tc_out) : ""}</span> ${esc(hit.speaker || "")}<br>${diffHtml(hit.diff, hit.text)}`;
    await this.seek(Math.max(0, hit.start - this.preRoll));
    this.play();
    if (this.onHit) this.onHit(i);
  }
  async seek(t) {
    const el = this.el;
    if (el.readyState < 1) await new Promise(res => el.addEventListener("loadedmetadata", res, { once: true }));
    el.currentTime = t;
    await new Promise(res => el.addEventListener("seeked", res, { once: true }));
    this.tick();
  }
  play() { this.stopReverse(); const p = this.el.play(); if (p) p.catch(() => {}); }
  pause() { this.stopReverse(); this.el.pause(); this.el.playbackRate = 1; }
  toggle() { this.el.paused ? this.play() : this.pause(); }
  frame() { return TC.frameAt(this.el.currentTime, this.rate); }
  step(n) {
    if (!this.take) return;
    this.pause();
    const f = Math.max(0, this.frame() + n);
    this.el.currentTime = TC.secondsOf(f, this.rate) + 1e-4;
  }
  go(d) {
    if (!this.hits.length) return;
    const i = Math.min(this.hits.length - 1, Math.max(0, this.pos + d));
    if (i !== this.pos) this.playHit(this.hits, i);
  }
  stopReverse() { if (this.reverse) { clearInterval(this.reverse); this.reverse = null; } }
  key(e) {
    if (!this.take || e.target.matches("input, textarea")) return;
    const k = e.key.toLowerCase();
    if (k === "k" || k === " ") { e.preventDefault(); this.toggle(); }
    else if (k === "l") {
      if (this.reverse || this.el.paused) { this.play(); this.el.playbackRate = 1; }
      else this.el.playbackRate = Math.min(8, this.el.playbackRate * 2);
    } else if (k === "j") {                        // browsers cannot play backwards: step back in time
      this.el.pause();
      const speed = this.reverse ? Math.min(8, (this.reverseSpeed || 1) * 2) : 1;
      this.stopReverse();
      this.reverseSpeed = speed;
      this.reverse = setInterval(() => {
        const t = this.el.currentTime - 0.1 * speed;
        if (t <= 0) { this.el.currentTime = 0; this.stopReverse(); } else this.el.currentTime = t;
      }, 100);
    } else if (e.key === "ArrowLeft") { e.preventDefault(); this.step(-1); }
    else if (e.key === "ArrowRight") { e.preventDefault(); this.step(1); }
    else if (k === "n") this.go(1);
    else if (k === "p") this.go(-1);
    else if (k === "o" && this.loopEl) this.loopEl.checked = !this.loopEl.checked;
    else if (k === "i" && this.noteForm && !this.noteForm.hidden) this.markFrom(this.frame());   // a stretch starts
    else if (k === "m" && this.noteForm && !this.noteForm.hidden) {      // a note at this frame (pauses)
      e.preventDefault();
      this.root.querySelector("#note-text").focus();
    }
  }
  tick() {
    if (!this.take) return;
    const el = this.el;
    this.tcEl.textContent = TC.toTc(this.take.start_frame + this.frame(), this.rate, this.take.drop_frame);
    if (this.hit && this.loopEl && this.loopEl.checked && !el.paused && el.currentTime >= this.hit.end) {
      el.currentTime = this.hit.start;
    }
    if (!this.wave.hidden) this.drawCursor();
  }
  async drawWave() {
    // A waveform of the sound, decoded by the browser itself (no server work).
    this.peaks = null;
    const take = this.take;
    try {
      const buf = await (await fetch(this.audio.src || take.media_url, { credentials: "same-origin" })).arrayBuffer();
      const ctx = new (window.OfflineAudioContext || window.webkitOfflineAudioContext)(1, 1, 8000);
      const audio = await ctx.decodeAudioData(buf);
      if (this.take !== take) return;
      const data = audio.getChannelData(0), w = this.wave.width, per = Math.max(1, Math.floor(data.length / w));
      this.peaks = [];
      for (let x = 0; x < w; x++) {
        let m = 0;
        for (let i = x * per; i < (x + 1) * per && i < data.length; i++) m = Math.max(m, Math.abs(data[i]));
        this.peaks.push(m);
      }
      this.waveDuration = audio.duration;
    } catch (e) { this.peaks = []; }
    this.drawCursor();
  }
  drawCursor() {
    const c = this.wave.getContext("2d"), w = this.wave.width, h = this.wave.height;
    c.fillStyle = "#111"; c.fillRect(0, 0, w, h);
    c.fillStyle = "#4aa3df";
    (this.peaks || []).forEach((p, x) => { const y = p * h / 2; c.fillRect(x, h / 2 - y, 1, Math.max(1, 2 * y)); });
    const d = this.waveDuration || this.el.duration;
    if (d) { c.fillStyle = "#f5c542"; c.fillRect(Math.round(this.el.currentTime / d * w), 0, 2, h); }
  }
}
