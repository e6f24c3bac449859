// The search page: results as you type (debounced), filters, click a hit to play it.
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const player = new Player($("player"));
  const list = $("hits"), msg = $("message"), exp = $("export");
  let hits = [], seq = 0, timer = null, pending = null;

  function params() {
    const p = new URLSearchParams({ q: $("q").value.trim() });
    for (const f of ["scene", "take", "speaker", "visual"]) {
      const v = $("f-" + f).value.trim();
      if (v) p.set(f, v);
    }
    return p;
  }
  async function search() {
    const p = params();
    if (!p.get("q")) { list.innerHTML = ""; msg.textContent = ""; hits = []; exportLinks(null); return; }
    const mine = ++seq;
    msg.textContent = "searching…";
    if (pending) pending.abort();                    // the server skips a search whose page stopped waiting
    const ours = pending = new AbortController();
    try {
      const found = await api(`/api/search/line?${p}`, ours.signal);
      if (mine !== seq) return;                      // a newer query is on its way
      hits = found;
      render(p.get("q"));
      exportLinks(hits.length ? p : null);
      const history = new URLSearchParams(p);
      window.history.replaceState(null, "", `/?${history}`);
    } catch (e) {
      if (mine === seq && e.name !== "AbortError") { list.innerHTML = ""; msg.textContent = e.message; exportLinks(null); }
    } finally {
      if (pending === ours) pending = null;
    }
  }
  function render(q) {
    msg.textContent = hits.length ? `${hits.length} hit${hits.length > 1 ? "s" : ""}` : `No take delivers “${q}”.`;
    list.innerHTML = hits.map((h, i) => `
      <li class="hit" data-i="${i}" data-take-id="${esc(h.take_id)}" tabindex="0">
        ${h.line_ids && h.line_ids.length ? `<input type="checkbox" class="pick" data-key="${esc(h.line_ids.join("+"))}"
          title="Choose this hit for the export (none chosen: every hit)">` : ""}
        ${h.shots && h.shots.length ? `<img class="thumb" loading="lazy" alt="" src="/media/${encodeURIComponent(h.take_id)}/thumb?t=${h.start}"
             onerror="this.replaceWith(Object.assign(document.createElement('div'),{className:'thumb nothumb',textContent:'?'}))">`
          : `<div class="thumb nothumb" title="sound only">♪</div>`}
        <div class="body">
          <div class="head"><b class="clip">${esc(h.name)}</b>${h.circled ? `<span class="circled" title="circled take">●</span>` : ""}
            <span>sc ${esc(h.scene || "–")} · tk ${esc(h.take || "–")}${h.camera ? " · cam " + esc(h.camera) : ""}</span>
            <span class="tcs"><span class="tc-in">${esc(h.tc_in)}</span> – <span class="tc-out">${esc(h.tc_out)}</span></span>
            <span class="speaker">${esc(h.speaker || "")}</span>
            <span class="score">${h.match != null ? Math.round(h.match * 100) + "%" : ""}</span></div>
          <div class="text">${diffHtml(h.diff, h.text)}</div>
          <div class="hitnotes" hidden></div>
        </div>
      </li>`).join("");
    showNotes();
  }
  // Review notes (`dailies notes`) on each hit: those from a second before its start to a second after its end,
  // read at start, after a note is added here, and every 10 s while the page is shown.
  let notesByTake = {};
  async function loadNotes() {
    try {
      const by = {};
      for (const n of await api("/api/notes")) (by[n.take_id] = by[n.take_id] || []).push(n);
      notesByTake = by;
    } catch (e) { return; }
    showNotes();
  }
  function showNotes() {
    for (const li of list.querySelectorAll(".hit")) {
      const h = hits[Number(li.dataset.i)], el = li.querySelector(".hitnotes");
      if (!h || !el) continue;
      const near = notesNear(notesByTake[h.take_id], h.start, h.end);
      const html = near.map(n => `<span class="hitnote" title="review note">✎ <span class="tcs">${esc(noteWhen(n))}</span> ` +
        `${n.author ? `<span class="nby">${esc(n.author)}</span> ` : ""}${esc(n.text)}</span>`).join("");
      if (el.innerHTML !== html) el.innerHTML = html;
      el.hidden = !near.length;
    }
  }
  loadNotes();
  setInterval(() => { if (!document.hidden) loadNotes(); }, 10000);
  player.onNotes = loadNotes;
  // A take circled (or uncircled) in the player: its hits' ● follows, ticks and the rest left as they are.
  player.onCircle = done => {
    hits.forEach((h, i) => {
      if (h.take_id !== done.take_id) return;
      h.circled = done.circled;
      const head = list.querySelector(`.hit[data-i="${i}"] .head`);
      if (!head) return;
      const mark = head.querySelector(".circled");
      if (done.circled && !mark) head.querySelector(".clip").insertAdjacentHTML("afterend", `<span class="circled" title="circled take">●</span>`);
      if (!done.circled && mark) mark.remove();
    });
  };
  // The hits shown, as files for the NLE: the same search and filters, sent by /api/export (null: none to offer);
  // with hits ticked, those only (each by its line ids), every one of them.
  let shown = null;
  function exportLinks(p) {
    shown = p;
    exp.hidden = !p;
    if (!p) return;
    const chosen = [...list.querySelectorAll(".pick:checked")].map(c => c.dataset.key);
    $("export-chosen").textContent = chosen.length ? ` (${chosen.length} chosen)` : "";
    for (const a of exp.querySelectorAll("a")) {
      const q = new URLSearchParams(p);
      q.set("format", a.dataset.format);
      for (const k of chosen) q.append("only", k);
      a.href = `/api/export/${a.dataset.what}?${q}`;
    }
  }
  function schedule() { clearTimeout(timer); timer = setTimeout(search, 250); }
  $("q").addEventListener("input", schedule);
  for (const f of ["scene", "take", "speaker", "visual"]) $("f-" + f).addEventListener("input", schedule);
  $("q").addEventListener("keydown", e => { if (e.key === "Enter") { clearTimeout(timer); search(); } });
  list.addEventListener("change", e => { if (e.target.classList.contains("pick") && shown) exportLinks(shown); });
  list.addEventListener("click", e => {
    if (e.target.classList.contains("pick")) return;            // choosing a hit does not play it
    const li = e.target.closest(".hit");
    if (!li) return;
    $("player").hidden = false;
    player.playHit(hits, Number(li.dataset.i)).catch(err => player.note(err.message));
  });
  player.onHit = i => {
    for (const li of list.querySelectorAll(".hit")) li.classList.toggle("current", Number(li.dataset.i) === i);
  };
  // Picture search: drop a still anywhere on the page (shots that look like it, CLIP).
  document.addEventListener("dragover", e => { e.preventDefault(); document.body.classList.add("dropping"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
  document.addEventListener("drop", async e => {
    e.preventDefault();
    document.body.classList.remove("dropping");
    const file = e.dataTransfer.files[0];
    if (!file) return;
    const mine = ++seq;
    msg.textContent = `searching shots that look like ${file.name}…`;
    try {
      const r = await fetch("/api/search/visual", { method: "POST", body: file, credentials: "same-origin" });
      const body = await r.json();
      if (mine !== seq) return;
      if (!r.ok) throw new Error(body.error || r.statusText);
      hits = body;
      render(file.name);
      exportLinks(null);                             // shots found by picture: no line search to export
    } catch (err) { if (mine === seq) { list.innerHTML = ""; msg.textContent = err.message; } }
  });
  // Restore a query from the address (?q=...), e.g. a link shared with a colleague.
  const start = new URLSearchParams(location.search);
  for (const f of ["scene", "take", "speaker", "visual"]) if (start.get(f)) $("f-" + f).value = start.get(f);
  if (start.get("q")) { $("q").value = start.get("q"); search(); }
  api("/api/status").then(s => { $("status").textContent = `${s.indexed} takes · ${s.lines} lines`; }).catch(() => {});
})();
