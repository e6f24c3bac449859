// The voices page: each voice with its longest clean lines to listen to, its takes and minutes; name it, merge
// another into it, split a take's speaker off, accept the names the screenplay's cues propose.
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const readOnly = document.querySelector(".voicespage").dataset.readOnly === "true";
  const list = $("voices"), msg = $("message"), audio = $("clip-audio");
  let voices = [];

  async function load() {
    try {
      voices = await api("/api/voices");
    } catch (e) { msg.textContent = e.message; return; }
    render();
    loadProposals();
  }
  function label(v) { return v.name ? `${v.name} (${v.voice_id})` : v.voice_id; }
  function render() {
    if (!voices.length) {
      list.innerHTML = "";
      msg.textContent = "No voices yet: index takes with the speaker models present (`dailies models list` shows them).";
      return;
    }
    const dis = readOnly ? " disabled" : "";
    list.innerHTML = voices.map(v => `
      <li class="voice" data-voice-id="${esc(v.voice_id)}">
        <h2><span class="vname">${esc(v.name || "unnamed")}</span> <span class="vid">${esc(v.voice_id)}</span></h2>
        <div class="meta">${v.takes} take${v.takes === 1 ? "" : "s"} · ${v.minutes.toFixed(1)} min of speech ·
          every line as markers: ${[["avid", "Avid"], ["resolve", "Resolve"], ["premiere", "Premiere"], ["csv", "CSV"]].map(([f, n]) =>
            `<a class="dl" download href="/api/export/markers?${new URLSearchParams({ voice: v.voice_id, format: f })}">${n}</a>`).join(" · ")}</div>
        <ol class="clips">${v.clips.map((c, k) => `
          <li class="clipline" data-k="${k}">
            <button class="play" type="button" title="Listen">▶</button>
            <a class="clipname" href="/take/${encodeURIComponent(c.take_id)}?t=${c.start}">${esc(c.clip)}</a>
            <span class="tcs">${esc(c.tc_in)}</span>
            <span class="text">${esc(c.text)}</span>
          </li>`).join("") || "<li class=\"none\">No clean line to listen to.</li>"}</ol>
        <div class="actions">
          <form class="name-form"><label>name <input class="name-input" value="${esc(v.name || "")}" placeholder="e.g. MAYA" size="14"${dis}></label>
            <button type="submit"${dis}>Name</button></form>
          ${voices.length > 1 ? `<form class="merge-form"><label>merge <select class="merge-other"${dis}>${voices
            .filter(o => o.voice_id !== v.voice_id).map(o => `<option value="${esc(o.voice_id)}">${esc(label(o))}</option>`).join("")}
            </select> into this voice</label> <button type="submit"${dis}>Merge</button></form>` : ""}
        </div>
        <div class="locals">In: ${v.locals.map(l => `<span class="local">${esc(l.clip)} (${l.seconds.toFixed(1)} s)
          <button type="button" class="split" data-take-id="${esc(l.take_id)}" data-label="${esc(l.label)}"
            title="This take's speaker is someone else: make it a voice of its own"${dis}>split off</button></span>`).join(" · ")}</div>
      </li>`).join("");
    msg.textContent = `${voices.length} voice${voices.length === 1 ? "" : "s"}`;
  }
  async function change(url, body, done) {
    try {
      const out = await post(url, body);
      await load();
      msg.textContent = done(out);
    } catch (e) { msg.textContent = e.message; }
  }
  list.addEventListener("submit", e => {
    e.preventDefault();
    const li = e.target.closest(".voice");
    const vid = li.dataset.voiceId;
    if (e.target.classList.contains("name-form")) {
      const name = li.querySelector(".name-input").value.trim();
      change("/api/voices/name", { voice: vid, name }, out => `${out.voice_id} is now ${out.name}.`);
    } else if (e.target.classList.contains("merge-form")) {
      const other = li.querySelector(".merge-other").value;
      change("/api/voices/merge", { keep: vid, other }, out => `${other} merged into ${out.voice_id}.` +
        (out.shared_takes ? ` Note: the two speak together in ${out.shared_takes} take(s); split undoes a wrong merge.` : ""));
    }
  });
  list.addEventListener("click", e => {
    const split = e.target.closest(".split");
    if (split) {
      const vid = split.closest(".voice").dataset.voiceId;
      change("/api/voices/split", { voice: vid, take: split.dataset.takeId, label: split.dataset.label },
        out => `${out.clip}: that speaker is now ${out.voice_id}.`);
      return;
    }
    const play = e.target.closest(".play");
    if (play) {
      const row = play.closest(".clipline");
      const v = voices.find(x => x.voice_id === row.closest(".voice").dataset.voiceId);
      listen(row, v.clips[Number(row.dataset.k)]);
    }
  });
  // A clip plays from its line's start to its end (a media fragment: the browser stops there).
  function listen(row, c) {
    for (const el of list.querySelectorAll(".clipline.playing")) el.classList.remove("playing");
    row.classList.add("playing");
    audio.src = `${c.media_url}#t=${c.start},${c.end}`;
    audio.play().catch(err => { msg.textContent = `Cannot play ${c.clip}: ${err.message}`; });
  }
  audio.addEventListener("pause", () => {
    for (const el of list.querySelectorAll(".clipline.playing")) el.classList.remove("playing");
  });
  async function loadProposals() {
    const box = $("proposals");
    let p;
    try { p = await api("/api/voices/proposals"); } catch (e) { box.innerHTML = `<p class="meta">${esc(e.message)}</p>`; return; }
    const todo = p.proposals.filter(x => (x.current || "") !== x.character);
    if (!todo.length) { box.innerHTML = p.proposals.length ? "<p class=\"meta\">Every voice has the name its script cues propose.</p>" : ""; return; }
    box.innerHTML = `<p>The screenplay's cues propose: ${todo.map(x =>
      `<b>${esc(x.voice_id)}</b> → ${esc(x.character)} (${Math.round(x.share * 100)}% of its lines)`).join(", ")}
      <button id="accept" type="button"${readOnly ? " disabled" : ""}>Accept names from the script</button></p>`;
    $("accept").addEventListener("click", () => change("/api/voices/accept-proposals", {},
      out => `Named from the script: ${out.named.join(", ") || "nothing new"}.`));
  }
  load();
  api("/api/status").then(s => { $("status").textContent = `${s.indexed} takes · ${s.voices} voices`; }).catch(() => {});
})();
