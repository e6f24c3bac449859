// Source timecode in the browser: the same arithmetic as indexer/timecode.py (exact rational rates,
// drop-frame only at 30000/1001 and 60000/1001, shown with ';').
"use strict";
const TC = (() => {
  function parseRate(s) {
    const [n, d] = String(s).split("/").map(Number);
    return { num: n, den: d || 1 };
  }
  // The frame whose interval holds `seconds` (indexer.timecode.frame_at).
  function frameAt(seconds, rate) {
    return Math.max(0, Math.floor((seconds * rate.num) / rate.den + 1e-6));
  }
  function secondsOf(frame, rate) {
    return (frame * rate.den) / rate.num;
  }
  function pad(n) { return String(n).padStart(2, "0"); }
  // Frame count (from midnight) -> SMPTE timecode.
  function toTc(frames, rate, drop) {
    const fps = Math.round(rate.num / rate.den);
    if (drop) {
      const dropped = Math.round(fps / 15);              // 2 at 29.97, 4 at 59.94
      const per10 = fps * 600 - dropped * 9;
      const perMin = fps * 60 - dropped;
      const tens = Math.floor(frames / per10);
      const rem = frames % per10;
      frames += dropped * 9 * tens + (rem > dropped ? dropped * Math.floor((rem - dropped) / perMin) : 0);
    }
    const ff = frames % fps;
    const totalS = Math.floor(frames / fps);
    const s = totalS % 60, m = Math.floor(totalS / 60) % 60, h = Math.floor(totalS / 3600) % 24;
    return `${pad(h)}:${pad(m)}:${pad(s)}${drop ? ";" : ":"}${pad(ff)}`;
  }
  return { parseRate, frameAt, secondsOf, toTc };
})();
