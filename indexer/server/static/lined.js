// The lined script and coverage pages: click a take line (or a coverage cell) at a script line to play that
// take from that delivery (less the pre-roll) in the review room's player; camera/circled/character filters.
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const player = new Player($("player"));
  let current = null;
  function play(el) {
    const hit = { take_id: el.dataset.take, name: el.closest("[data-name]") ? el.closest("[data-name]").dataset.name : el.dataset.take,
      scene: null, take: null, start: parseFloat(el.dataset.start), end: parseFloat(el.dataset.end || el.dataset.start),
      tc_in: "", tc_out: "", speaker: el.dataset.line, text: el.dataset.line, diff: el.dataset.diff || null };
    if (current) current.classList.remove("current");
    current = el.closest(".seg, td") || el;
    current.classList.add("current");
    player.playHit([hit], 0).then(() => {
      const t = player.take;
      const info = $("hitinfo");
      if (t && info) info.innerHTML = `<b>${esc(t.name)}</b> line ${esc(el.dataset.line)} · ${esc(el.dataset.state || "")}` +
        (el.dataset.diff ? `<br>${diffHtml(el.dataset.diff, "")}` : "");
    }).catch(err => player.note(err.message));
  }
  document.addEventListener("click", e => {
    const el = e.target.closest(".seg[data-start], a.play[data-start]");
    if (!el) return;
    e.preventDefault();
    play(el);
  });
  // The version shown (the lined script page, when several are imported).
  const version = $("version");
  if (version) version.addEventListener("change", () => {
    const opt = version.selectedOptions[0];
    location.search = new URLSearchParams({ script: opt.dataset.script, version: opt.value }).toString();
  });
  // Filters (the lined script page).
  const camera = $("camera"), circled = $("circled"), character = $("character");
  function filter() {
    const cam = camera ? camera.value : "", circ = circled && circled.checked, who = character ? character.value : "";
    document.querySelectorAll(".takeline").forEach(tl => {
      tl.hidden = (cam && tl.dataset.camera !== cam) || (circ && tl.dataset.circled !== "1");
      tl.querySelectorAll(".seg").forEach(s => { s.hidden = !!who && s.dataset.character !== who; });
    });
  }
  for (const el of [camera, circled, character]) if (el) el.addEventListener("change", filter);
  filter();
  // Coverage: the string-out links beside each line take the format chosen at the top.
  const expFormat = document.getElementById("exp-format");
  if (expFormat) expFormat.addEventListener("change", () => {
    for (const a of document.querySelectorAll("a.dl")) {
      const u = new URL(a.href);
      u.searchParams.set("format", expFormat.value);
      a.href = u.pathname + u.search;
    }
  });
})();
