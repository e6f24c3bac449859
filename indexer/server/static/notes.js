// The notes page: every review note of the index (`dailies notes list`), by clip name and frame;
// filter by take, author or text; a click plays the take into the note's frame (N / P: the next, previous note);
// the notes of the takes listed download as markers.
"use strict";
(async () => {
  const $ = id => document.getElementById(id);
  const player = new Player($("player"));
  let notes = [], rows = [];
  const has = (value, needle) => !needle || String(value || "").toLowerCase().includes(needle.toLowerCase());
  let seen = null;
  async function load() {
    let got;
    try { got = await api("/api/notes"); } catch (e) { $("message").textContent = e.message; return; }
    const key = JSON.stringify(got);
    if (key === seen) return;                // nothing new: the list (and the row playing) stay as they are
    seen = key;
    notes = got;
    render();
  }
  // Others' notes appear without reloading: read again every 10 s while the page is shown.
  setInterval(() => { if (!document.hidden) load(); }, 10000);
  function render() {
    const take = $("f-take").value.trim(), by = $("f-author").value.trim(), text = $("f-text").value.trim();
    rows = notes.filter(n => has(n.name, take) && has(n.author, by) && has(n.text, text));
    $("message").textContent = !notes.length ? "No review notes yet: type one under the player of any take, or " +
      "`dailies notes add TAKE TC \"text\"`." : `${rows.length} of ${notes.length} note${notes.length === 1 ? "" : "s"}`;
    $("notelist").innerHTML = rows.map((n, i) => `
      <li class="hit noterow" data-i="${i}">
        <div class="body">
          <div class="head"><a class="clip" href="/take/${encodeURIComponent(n.take_id)}">${esc(n.name)}</a>
            <span class="meta">sc ${esc(n.scene || "–")} · tk ${esc(n.take || "–")}${n.camera ? " · cam " + esc(n.camera) : ""}</span>
            <span class="tcs">${esc(noteWhen(n))}</span>${n.author ? ` <span class="nby">${esc(n.author)}</span>` : ""}</div>
          <div class="text">${esc(n.text)}</div>
        </div>
      </li>`).join("");
    const takes = [...new Set(rows.map(n => n.take_id))];
    for (const a of $("export").querySelectorAll("a")) {
      const q = new URLSearchParams({ notes: "1", format: a.dataset.format });
      if (rows.length < notes.length) for (const t of takes) q.append("take", t);
      a.href = `/api/export/markers?${q}`;
    }
    $("export").hidden = !rows.length;
  }
  // Each note as the player's "hit": from a second before its frame, looping to two seconds after it (or to the end
  // of its stretch).
  const hits = () => rows.map(n => ({ take_id: n.take_id, name: n.name, scene: n.scene, take: n.take, start: n.seconds,
    end: n.end_seconds != null ? n.end_seconds : n.seconds + 2, tc_in: n.tc, tc_out: n.tc_end || n.tc,
    speaker: n.author, text: n.text, diff: null }));
  player.onHit = i => $("notelist").querySelectorAll(".noterow").forEach((el, k) => el.classList.toggle("current", k === i));
  player.onNotes = load;           // a note added or deleted under the player
  $("notelist").addEventListener("click", e => {
    if (e.target.closest("a")) return;
    const li = e.target.closest(".noterow");
    if (!li) return;
    $("player").hidden = false;
    player.playHit(hits(), parseInt(li.dataset.i, 10));
  });
  for (const id of ["f-take", "f-author", "f-text"]) $(id).addEventListener("input", render);
  load();
})();
