// The take page: transcript by line and speaker (click a word to seek), the script lines of the take's scene
// (click a delivered one to seek to it), shot strip with TC.
"use strict";
(async () => {
  const $ = id => document.getElementById(id);
  const takeId = document.querySelector(".takepage").dataset.takeId;
  const player = new Player($("player"));
  if ($("circle-take")) $("circle-take").dataset.off = "true";     // this page circles with its own form (and note)
  let take;
  try {
    take = await player.loadTake(takeId);
  } catch (e) { $("message").textContent = e.message; $("player").hidden = true; return; }
  $("take-title").textContent = take.name;
  $("take-meta").textContent = `sc ${take.scene || "–"} · tk ${take.take || "–"}${take.camera ? " · cam " + take.camera : ""} · ` +
    `${take.rate} fps · start ${take.start_tc} · ${take.clip}` +
    (take.channels.some(c => c.role === "iso") ? " · sound: " + take.channels.map(c =>
      `${c.channel} ${c.role}${c.owner ? " " + c.owner : c.name && c.name.toUpperCase() !== c.role.toUpperCase() ? " " + c.name : ""}`).join(", ") : "");
  renderCircle(take.circled, take.circle_note);
  $("circle").addEventListener("submit", async e => {
    e.preventDefault();
    const on = $("circle").dataset.circled !== "true";
    try {
      const done = await post(`/api/takes/${encodeURIComponent(take.take_id)}/circle`,
        { circled: on, note: on ? $("circle-note").value : null });
      renderCircle(done.circled, done.circle_note);
      $("message").textContent = "";
    } catch (err) { $("message").textContent = err.message; }
  });
  if (take.media_missing) $("message").textContent = "The media of this take is missing (moved or offline); its transcript is below.";
  if (take.lines.length) {                           // the transcript as files (`dailies export transcript`)
    for (const a of $("export").querySelectorAll("a"))
      a.href = `/api/export/transcript?${new URLSearchParams({ take: take.take_id, format: a.dataset.format })}`;
    $("export").hidden = false;
  }
  const rate = TC.parseRate(take.rate);
  $("transcript").innerHTML = take.lines.length ? take.lines.map(ln => `
    <div class="line" data-start="${ln.start}">
      <span class="who">${esc(ln.speaker || ln.local_speaker || "–")}${ln.channel ? ` <span class="chan" title="heard on channel ${ln.channel} (an iso)">ch ${ln.channel}</span>` : ""}</span>
      <span class="tcs">${esc(ln.tc_in)}</span>
      <span class="words">${ln.words.map(w => `<span class="word" data-t="${w.start}">${esc(w.text)}</span>`).join(" ")}</span>
    </div>`).join("") : "<p>No speech in this take.</p>";
  // The take's lines are the player's "hits" here: N / P move by line, O loops the current one.
  const lineHits = take.lines.map(ln => ({ take_id: take.take_id, name: take.name, scene: take.scene, take: take.take,
    start: ln.start, end: ln.end, tc_in: ln.tc_in, tc_out: ln.tc_out, speaker: ln.speaker || ln.local_speaker,
    text: ln.text, diff: null }));
  player.onHit = i => $("transcript").querySelectorAll(".line").forEach((el, k) => el.classList.toggle("current", k === i));
  // A line with review notes within it (a second either side) says so, as a search hit does.
  player.onNotesRead = notes => $("transcript").querySelectorAll(".line").forEach((el, k) => {
    const near = notesNear(notes, take.lines[k].start, take.lines[k].end);
    let mark = el.querySelector(".lnote");
    if (!near.length) { if (mark) mark.remove(); return; }
    if (!mark) { mark = document.createElement("span"); mark.className = "lnote"; el.appendChild(mark); }
    mark.textContent = "✎";
    mark.title = near.map(n => `${noteWhen(n)} ${n.author ? n.author + ": " : ""}${n.text}`).join("\n");
  });
  if (player.notesEl) player.loadNotes();            // the notes were read before the transcript was drawn
  $("transcript").addEventListener("click", e => {
    const w = e.target.closest(".word");
    if (w) { player.seek(parseFloat(w.dataset.t)).then(() => player.play()); return; }
    const ln = e.target.closest(".line");
    if (ln) player.playHit(lineHits, [...$("transcript").children].indexOf(ln));
  });
  const link = $("takelink");
  if (link) link.hidden = true;
  $("prev").title = "Previous line (P)";
  $("next").title = "Next line (N)";
  $("prev").textContent = "◀◀ line";
  $("next").textContent = "line ▶▶";
  renderScript(take.script);
  $("script").addEventListener("click", e => {
    const ln = e.target.closest(".sline[data-start]");
    if (ln) player.seek(parseFloat(ln.dataset.start)).then(() => player.play());
  });
  $("shots").innerHTML = take.shots.map(s => `
    <figure class="shot" data-start="${s.start}">
      <img loading="lazy" alt="shot ${s.shot}" src="/media/${encodeURIComponent(take.take_id)}/thumb?t=${TC.secondsOf(s.first_frame, rate) + 1e-4}">
      <figcaption>shot ${s.shot} · ${esc(s.tc_in)}–${esc(s.tc_out)}${s.tags.length ? " · " + esc(s.tags.join(", ")) : ""}</figcaption>
    </figure>`).join("") || "<p>No picture.</p>";
  $("shots").addEventListener("click", e => {
    const f = e.target.closest(".shot");
    if (f) player.seek(parseFloat(f.dataset.start) + 1e-4).then(() => player.play());
  });
  // Circled (printed) or not, with its note; the button circles or uncircles (not under --read-only).
  function renderCircle(circled, note) {
    const form = $("circle");
    form.hidden = false;
    form.dataset.circled = circled ? "true" : "false";
    $("circle-state").textContent = circled ? "● circled" + (note ? ": " + note : "") : "not circled";
    $("circle-state").classList.toggle("on", !!circled);
    $("circle-note").hidden = !!circled;
    $("circle-note").value = "";
    $("circle-toggle").textContent = circled ? "Uncircle" : "Circle";
    $("circle-toggle").disabled = form.dataset.readOnly === "true";
  }
  // The script panel: every line of the scene the take was matched to, in script order (one row per delivery).
  function renderScript(sc) {
    if (!sc) {
      $("script-meta").textContent = "";
      $("script").innerHTML = "<p class=\"none\">No screenplay is imported into this index " +
        "(<code>dailies script import FILE</code> adds one).</p>";
      return;
    }
    const how = { name: "from its name", dialogue: "found from its dialogue" }[sc.scene_source] || "";
    if (!sc.scene) {
      $("script-meta").textContent = `script “${sc.script}” v${sc.version}`;
      $("script").innerHTML = `<p class="none">No scene of “${esc(sc.script)}” found for this take` +
        (sc.no_dialogue ? " (nothing was said in it)." : " (its dialogue matches no scene).") + "</p>";
      return;
    }
    $("script-meta").textContent = `script “${sc.script}” v${sc.version} · scene ${sc.scene}${how ? " (" + how + ")" : ""}` +
      (sc.no_dialogue ? " · no dialogue recorded (MOS)" : "");
    $("script").innerHTML = sc.lines.map(ln => `
      <div class="sline ${esc(ln.status)}"${ln.start != null ? ` data-start="${ln.start}" title="${esc(ln.tc_in)}–${esc(ln.tc_out)}"` : ""}>
        <span class="lid">${esc(ln.line_id)}</span>
        <span class="who">${esc(ln.character)}</span>
        <span class="text">${esc(ln.text)}</span>
        <span class="st">${esc(ln.status.replace("_", " "))}${ln.attempt > 1 ? " #" + ln.attempt : ""}${ln.tc_in ? " · " + esc(ln.tc_in) : ""}</span>
      </div>`).join("") || "<p class=\"none\">This scene has no dialogue.</p>";
  }
  // ?t=SECONDS opens the take there.
  const t = parseFloat(new URLSearchParams(location.search).get("t"));
  if (!take.media_missing) player.seek(isNaN(t) ? 0 : t).catch(() => {});
})();
