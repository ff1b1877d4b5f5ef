// A small SVG chart of our own for the reports view: handovers per day (bars, left
// axis) and the median wait of each day in minutes (a line with dots, right axis).

import { niceStep } from "./chart.js";
import { s } from "./dom.js";
import { roughDuration } from "./format.js";

const H = 240;
const M = { l: 40, r: 52, t: 14, b: 30 };

/** Axis maximum and ticks for values up to `value`. */
function axis(value, smallest) {
  const step = niceStep(Math.max(value, smallest), smallest);
  const max = Math.max(step, Math.ceil(value / step) * step);
  const ticks = [];
  for (let v = 0; v <= max + step / 2; v += step) ticks.push(v);
  return { max, ticks };
}

function fmt(v) {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 10) / 10);
}

/** "03-01" for "2026-03-01". */
function shortDay(day) {
  return day.slice(5);
}

/**
 * @param days [{key: "YYYY-MM-DD", handovers, wait_median_seconds}] oldest first (every day)
 * @param width the drawing's width in pixels
 */
export function reportChart(days, width = 760) {
  const W = Math.max(420, Math.round(width));
  const total = days.reduce((n, d) => n + d.handovers, 0);
  const label = days.length
    ? `Handovers per day from ${days[0].key} to ${days[days.length - 1].key}: ${total} in all.`
    : "No days in the range.";
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart report-chart", role: "img", preserveAspectRatio: "xMidYMid meet" });
  svg.setAttribute("aria-label", label);
  svg.append(s("title", { text: label }));
  if (!days.length) return svg;

  const left = axis(Math.max(...days.map((d) => d.handovers)), 1);
  const right = axis(Math.max(0, ...days.map((d) => (d.wait_median_seconds || 0) / 60)), 0.5);
  const slot = (W - M.l - M.r) / days.length;
  const x = (i) => M.l + slot * (i + 0.5);
  const yL = (v) => H - M.b - (v / left.max) * (H - M.t - M.b);
  const yR = (minutes) => H - M.b - (minutes / right.max) * (H - M.t - M.b);

  const grid = s("g", { class: "chart-grid" });
  for (const v of left.ticks) {
    grid.append(s("line", { x1: M.l, x2: W - M.r, y1: yL(v), y2: yL(v) }));
    grid.append(s("text", { x: M.l - 6, y: yL(v) + 4, "text-anchor": "end", class: "axis-left", text: fmt(v) }));
  }
  for (const v of right.ticks) {
    grid.append(s("text", { x: W - M.r + 6, y: yR(v) + 4, class: "axis-right", text: `${fmt(v)}m` }));
  }
  // a date under every bar while they fit, else under every n-th one
  const every = Math.max(1, Math.ceil(44 / slot));
  days.forEach((d, i) => {
    if (i % every === 0) grid.append(s("text", { x: x(i), y: H - 10, "text-anchor": "middle", text: shortDay(d.key) }));
  });
  svg.append(grid);

  const bars = s("g", { class: "series-handovers" });
  const barWidth = Math.max(1, Math.min(36, slot * 0.7));
  days.forEach((d, i) => {
    if (!d.handovers) return;
    bars.append(s("rect", { x: x(i) - barWidth / 2, y: yL(d.handovers), width: barWidth, height: yL(0) - yL(d.handovers), "data-day": d.key }));
  });
  svg.append(bars);

  // the median wait: a line broken on days without one, a dot on each day that has one
  let path = "";
  let pen = false;
  const dots = s("g", { class: "series-median-dots" });
  days.forEach((d, i) => {
    if (d.wait_median_seconds === null || d.wait_median_seconds === undefined) {
      pen = false;
      return;
    }
    const y = yR(d.wait_median_seconds / 60);
    path += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y.toFixed(1)}`;
    pen = true;
    dots.append(s("circle", { cx: x(i), cy: y, r: 3 }));
  });
  svg.append(s("path", { d: path, class: "series-median" }), dots);

  const hover = s("g", { class: "chart-hover" });
  days.forEach((d, i) => {
    const tip = `${d.key}: ${d.handovers} handover${d.handovers === 1 ? "" : "s"}`
      + (d.wait_median_seconds != null ? `; median wait ${roughDuration(d.wait_median_seconds)}` : "");
    hover.append(s("rect", { x: x(i) - slot / 2, y: M.t, width: slot, height: H - M.t - M.b }, s("title", { text: tip })));
  });
  svg.append(hover);
  return svg;
}
