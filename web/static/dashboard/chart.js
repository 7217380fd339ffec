/* A user's history chart (Chart.js, vendored) from its entry of /api/users/history:
 * the daily closes (blue line) and the total at its recent snapshots (green steps).
 *
 * The x axis is time in the configured zone (its name is the axis title), ends at the bundle's
 * timestamp (never in the future) and starts at the first point; ticks from ./ticks.js. The
 * canvas gets data-chart-ready="true" once drawn, "empty" when there is nothing to draw.
 */

import { setText } from "./dom.js";
import { decimalsFor, formatMoney, formatTime } from "./format.js";
import { moneyTick, timeLabel, timeTicks, yBounds } from "./ticks.js";

const CLOSE_COLOUR = "#2563eb";
const SNAPSHOT_COLOUR = "#16a34a";

function parse(list, now) {
  const out = [];
  (list || []).forEach(function (p) {
    const t = Date.parse(p.at);
    if (!isNaN(t) && p.total !== null && p.total !== undefined) { out.push({ x: Math.min(t, now), y: Number(p.total) }); }
  });
  return out;
}

/* {closes, points, min, max} of one user's history; ``now`` (ms) is the bundle's timestamp. */
export function seriesOf(history, now) {
  const closes = parse(history && history.closes, now);
  const points = parse(history && history.points, now);
  const xs = closes.concat(points).map(function (p) { return p.x; });
  if (!xs.length) { return { closes: closes, points: points, min: null, max: null }; }
  let min = Math.min.apply(null, xs);
  const max = Math.max(now, Math.max.apply(null, xs));
  if (max - min < 60000) { min = max - 60000; }          // one instant: a minute before it, not after
  min -= (max - min) * 0.03;                             // room for the first point; none after now
  return { closes: closes, points: points, min: min, max: max };
}

function options(series, ctx) {
  const tz = ctx.tz, cur = ctx.cur;
  const info = { unit: "day", step: 86400000, withYear: false };
  const y = yBounds(series.closes.concat(series.points).map(function (p) { return p.y; }), cur);
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    parsing: false,
    interaction: { mode: "nearest", intersect: false },
    layout: { padding: { right: 6 } },
    scales: {
      x: {
        type: "linear", min: series.min, max: series.max,
        title: { display: true, text: "time zone: " + tz, font: { size: 10 } },
        afterBuildTicks: function (scale) {
          const t = timeTicks(scale.min, scale.max, tz);
          info.unit = t.unit; info.step = t.step; info.withYear = t.withYear;
          scale.ticks = t.values.map(function (v) { return { value: v }; });
        },
        ticks: { autoSkip: true, maxRotation: 0, callback: function (v) { return timeLabel(v, info, tz); } }
      },
      y: {
        suggestedMin: y.suggestedMin, suggestedMax: y.suggestedMax,
        ticks: { maxTicksLimit: 5, precision: decimalsFor(cur), callback: function (v, i, ticks) { return moneyTick(v, ticks, cur); } }
      }
    },
    plugins: {
      legend: { labels: { boxWidth: 12 } },
      tooltip: { callbacks: {
        title: function (items) { return items.length ? formatTime(new Date(items[0].parsed.x).toISOString(), tz) + " " + tz : ""; },
        label: function (item) { return item.dataset.label + ": " + formatMoney(item.parsed.y, cur); }
      } }
    }
  };
}

/* Draw (or redraw) ``card``'s chart from ``history``; ``ctx`` is {cur, tz, now (ms)}. */
export function drawChart(card, history, ctx) {
  const note = card.parts.chartNote;
  const canvas = card.parts.canvas;
  if (typeof window.Chart === "undefined") { setText(note, "chart library missing"); return; }
  const series = seriesOf(history, ctx.now);
  if (!series.closes.length && !series.points.length) {
    if (card.chart) { card.chart.destroy(); card.chart = null; }
    setText(note, "no history yet");
    note.hidden = false;
    canvas.hidden = true;
    canvas.setAttribute("data-chart-ready", "empty");
    return;
  }
  note.hidden = true;
  canvas.hidden = false;
  if (card.chart) { card.chart.destroy(); }
  card.chart = new window.Chart(canvas, {
    type: "line",
    data: { datasets: [
      { label: "Daily close", data: series.closes, borderColor: CLOSE_COLOUR, backgroundColor: CLOSE_COLOUR,
        pointRadius: 3, borderWidth: 2, tension: 0, clip: 6 },
      { label: "Recent snapshots", data: series.points, borderColor: SNAPSHOT_COLOUR,
        backgroundColor: "rgba(22,163,74,0.12)", pointRadius: 2, borderWidth: 2, stepped: "before", fill: false, clip: 6 }
    ] },
    options: options(series, ctx)
  });
  canvas.setAttribute("data-chart-ready", "true");
}

/* Say why the history is missing, keeping a chart already drawn. */
export function chartProblem(card, message) {
  if (card.chart) { return; }
  setText(card.parts.chartNote, "history unavailable: " + message);
  card.parts.chartNote.hidden = false;
}
