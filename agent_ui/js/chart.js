// A small SVG chart of our own: queue length (steps, left axis) and waiting
// times in minutes (lines, right axis) over time, with the threshold marked.

import { s } from "./dom.js";
import { clock, roughDuration } from "./format.js";

const H = 220;
const M = { l: 40, r: 52, t: 14, b: 28 };

/** A round step (1, 2 or 5 x 10^n, at least `smallest`) giving about four intervals. */
export function niceStep(max, smallest) {
  const raw = Math.max(max / 4, smallest);
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return Math.max(m * pow, smallest);
  return 10 * pow;
}

/** Axis maximum and ticks for values up to `value`. */
function axis(value, minimum, smallest) {
  const step = niceStep(Math.max(value, minimum), smallest);
  const max = Math.max(step, Math.ceil(Math.max(value, minimum) / step) * step);
  const ticks = [];
  for (let v = 0; v <= max + step / 2; v += step) ticks.push(v);
  return { max, ticks };
}

function fmtTick(v) {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 10) / 10);
}

/** Path through the points, broken where a value is null. */
function linePath(points, x, y, key) {
  let d = "";
  let pen = false;
  for (const p of points) {
    const v = p[key];
    if (v === null || v === undefined) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${x(p.t).toFixed(1)},${y(v / 60).toFixed(1)}`;
    pen = true;
  }
  return d;
}

/**
 * @param points [{at, waiting, oldest_wait_seconds, mean_wait_seconds}] oldest first
 * @param thresholdSeconds the waiting threshold, drawn on the wait axis
 */
export function queueChart(points, thresholdSeconds, width = 760) {
  const W = Math.max(420, Math.round(width));
  const data = points.map((p) => ({ ...p, t: Date.parse(p.at) })).filter((p) => !Number.isNaN(p.t));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", preserveAspectRatio: "xMidYMid meet" });
  const last = data[data.length - 1];
  const label = last
    ? `Queue over the last hours. Now ${last.waiting} waiting, longest wait ${roughDuration(last.oldest_wait_seconds)}.`
    : "No queue data yet.";
  svg.setAttribute("aria-label", label);
  svg.append(s("title", { text: label }));
  if (data.length < 2) return svg;

  const t0 = data[0].t;
  const t1 = last.t;
  const left = axis(Math.max(...data.map((p) => p.waiting)), 4, 1);
  const right = axis(Math.max(thresholdSeconds / 60 * 1.2,
    ...data.map((p) => Math.max(p.oldest_wait_seconds || 0, p.mean_wait_seconds || 0) / 60)), 2, 0.5);
  const maxWaiting = left.max;
  const maxMinutes = right.max;
  const x = (t) => M.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - M.l - M.r);
  const yL = (v) => H - M.b - (v / maxWaiting) * (H - M.t - M.b);
  const yR = (minutes) => H - M.b - (Math.min(minutes, maxMinutes) / maxMinutes) * (H - M.t - M.b);

  const grid = s("g", { class: "chart-grid" });
  for (const v of left.ticks) {
    grid.append(s("line", { x1: M.l, x2: W - M.r, y1: yL(v), y2: yL(v) }));
    grid.append(s("text", { x: M.l - 6, y: yL(v) + 4, "text-anchor": "end", class: "axis-left", text: fmtTick(v) }));
  }
  for (const v of right.ticks) {
    grid.append(s("text", { x: W - M.r + 6, y: yR(v) + 4, class: "axis-right", text: `${fmtTick(v)}m` }));
  }
  const hour = 3600_000;
  const step = t1 - t0 > 6 * hour ? 2 * hour : t1 - t0 > 90 * 60_000 ? hour : 15 * 60_000;
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    grid.append(s("line", { x1: x(t), x2: x(t), y1: M.t, y2: H - M.b, class: "vline" }));
    grid.append(s("text", { x: x(t), y: H - 8, "text-anchor": "middle", text: clock(new Date(t).toISOString()) }));
  }
  svg.append(grid);

  // queue length: a step area
  let area = `M${x(t0)},${yL(0)}`;
  data.forEach((p, i) => {
    const next = data[i + 1] ? data[i + 1].t : p.t;
    area += `L${x(p.t).toFixed(1)},${yL(p.waiting).toFixed(1)}L${x(next).toFixed(1)},${yL(p.waiting).toFixed(1)}`;
  });
  area += `L${x(t1)},${yL(0)}Z`;
  svg.append(s("path", { d: area, class: "series-waiting" }));

  const thresholdY = yR(thresholdSeconds / 60);
  svg.append(s("line", { x1: M.l, x2: W - M.r, y1: thresholdY, y2: thresholdY, class: "threshold" }));
  svg.append(s("text", { x: M.l + 4, y: thresholdY - 4, "text-anchor": "start", class: "threshold-label", text: "wait threshold" }));
  svg.append(s("path", { d: linePath(data, x, yR, "oldest_wait_seconds"), class: "series-oldest" }));
  // the mean wait is measured per bucket where someone was taken: dots, not a line
  const means = s("g", { class: "series-mean" });
  for (const p of data) {
    if (p.mean_wait_seconds != null) means.append(s("circle", { cx: x(p.t), cy: yR(p.mean_wait_seconds / 60), r: 3.5 }));
  }
  svg.append(means);
  const dot = s("circle", { cx: x(last.t), cy: yL(last.waiting), r: 3.5, class: "now-dot" });
  svg.append(dot);

  // hover targets with native tooltips, one per bucket
  const hover = s("g", { class: "chart-hover" });
  const slot = (W - M.l - M.r) / data.length;
  for (const p of data) {
    const tip = `${clock(p.at)} — ${p.waiting} waiting; longest wait ${roughDuration(p.oldest_wait_seconds)}`
      + (p.mean_wait_seconds != null ? `; mean wait of those taken ${roughDuration(p.mean_wait_seconds)}` : "");
    hover.append(s("rect", { x: x(p.t) - slot / 2, y: M.t, width: slot, height: H - M.t - M.b }, s("title", { text: tip })));
  }
  svg.append(hover);
  return svg;
}
