/* A user's card: name, total (with the server's "partial" mark), broker lines (failing first,
 * unpriced assets named), trade figures, the history chart's place and the recent trades in a
 * horizontal scroll box that says when it scrolls.
 *
 * A card is built once per user (`makeCard`) and updated in place from each /api/users body
 * (`updateCard`); ``ctx`` is {cur: base currency, tz: time zone name}.
 */

import { clear, el, recheck, scrollBox, setText, signClass } from "./dom.js";
import { DASH, formatMoney, formatPercent, formatSigned, formatTime, isKnown } from "./format.js";
import { brokerLines, summaryOf } from "./status.js";

const MAX_TRADES = 5;

/* The "partial" mark beside a known total the server marked partial (hidden otherwise). */
export function showPartial(node, total, partial) {
  const show = Boolean(partial) && isKnown(total);
  if (node.hidden === show) { node.hidden = !show; }
}

export function partialMark(field) {
  const mark = el("span", "partial-mark", "partial");
  mark.setAttribute("data-field", field);
  mark.setAttribute("title", "some account of this total is stale, failed, not configured, not read yet or holds an unpriced asset");
  mark.hidden = true;
  return mark;
}

export function totalBox(total, mark) {
  const box = el("div", "total-box");
  box.appendChild(total);
  box.appendChild(mark);
  return box;
}

function stat(label, field) {
  const box = el("div", "stat");
  box.appendChild(el("dt", null, label));
  const dd = el("dd", "money", DASH);
  dd.setAttribute("data-field", field);
  box.appendChild(dd);
  return { box: box, value: dd };
}

export function makeCard(user) {
  const card = el("article", "card user-card");
  card.setAttribute("data-user-id", user.user_id);
  const head = el("div", "card-head");
  const titles = el("div", "titles");
  const name = el("h2", "user-name");
  const uid = el("span", "user-id muted");
  titles.appendChild(name);
  titles.appendChild(uid);
  const total = el("span", "total money");
  total.setAttribute("data-field", "total");
  const partial = partialMark("partial");
  head.appendChild(titles);
  head.appendChild(totalBox(total, partial));
  card.appendChild(head);
  const brokers = el("div", "broker-box");
  card.appendChild(brokers);
  const stats = el("dl", "stats");
  const parts = { name: name, uid: uid, total: total, partial: partial, brokers: brokers };
  [["Total trades", "total_trades"], ["Win rate", "win_rate"], ["Daily P&L", "daily_pnl"], ["Total P&L", "total_pnl"]]
    .forEach(function (pair) { const s = stat(pair[0], pair[1]); stats.appendChild(s.box); parts[pair[1]] = s.value; });
  card.appendChild(stats);
  const chartBox = el("div", "chart-box");
  const canvas = el("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "balance history of " + user.user_id);
  chartBox.appendChild(canvas);
  const chartNote = el("p", "chart-note muted", "loading history\u2026");
  chartBox.appendChild(chartNote);
  card.appendChild(chartBox);
  card.appendChild(el("h3", "trades-title", "Recent trades"));
  const trades = scrollBox("trades-box");
  card.appendChild(trades.wrap);
  parts.canvas = canvas;
  parts.chartNote = chartNote;
  parts.trades = trades.box;
  return { el: card, parts: parts, chart: null, signature: null, visible: false, history: null, drawn: null, user: user };
}

function tradesTable(trades, ctx) {
  if (!trades || !trades.length) { return el("p", "muted", "no trades recorded"); }
  const table = el("table", "trades");
  const thead = el("thead");
  const hr = el("tr");
  [["Time", ""], ["Broker", ""], ["Symbol", ""], ["Side", ""], ["Amount", "num"], ["Price", "num"], ["P&L", "num"]]
    .forEach(function (h) { hr.appendChild(el("th", h[1], h[0])); });
  hr.firstChild.setAttribute("title", "in " + ctx.tz);
  thead.appendChild(hr);
  table.appendChild(thead);
  const tbody = el("tbody");
  trades.slice(0, MAX_TRADES).forEach(function (t) {
    const tr = el("tr");
    const at = formatTime(t.executed_at || t.timestamp, ctx.tz);
    const when = el("td", "nowrap", at.slice(5));
    when.setAttribute("title", at + " " + ctx.tz);
    tr.appendChild(when);
    tr.appendChild(el("td", null, t.broker || DASH));
    tr.appendChild(el("td", null, t.symbol || DASH));
    tr.appendChild(el("td", "side side-" + String(t.side || "").replace(/[^a-z]/gi, ""), t.side || DASH));
    tr.appendChild(el("td", "num", isKnown(t.amount) ? String(t.amount) : DASH));
    tr.appendChild(el("td", "num", isKnown(t.price) ? String(t.price) : DASH));
    const pnl = el("td", "num", formatSigned(t.pnl, ctx.cur));
    signClass(pnl, t.pnl);
    tr.appendChild(pnl);
    tbody.appendChild(tr);
  });
  table.appendChild(tbody);
  return table;
}

/* What the chart depends on: when it changes, the history is worth asking again. */
export function signatureOf(user) {
  return JSON.stringify([user.total, user.partial, user.brokers, user.total_trades, user.total_pnl]);
}

/* Update ``card`` from ``user``; true when its numbers changed since the last update. */
export function updateCard(card, user, ctx) {
  const p = card.parts;
  const cur = ctx.cur;
  card.user = user;
  setText(p.name, user.name || user.user_id);
  setText(p.uid, user.name && user.name !== user.user_id ? user.user_id : "");
  setText(p.total, formatMoney(user.total, cur));
  showPartial(p.partial, user.total, user.partial);
  clear(p.brokers);
  p.brokers.appendChild(brokerLines(user.brokers, user.status, cur));
  const summary = summaryOf(user);
  card.el.setAttribute("data-worst", summary.worst);
  card.el.classList.toggle("failing", summary.counts.error > 0);
  card.el.classList.toggle("stale", summary.counts.error === 0 && summary.counts.stale > 0);
  setText(p.total_trades, isKnown(user.total_trades) ? String(user.total_trades) : DASH);
  setText(p.win_rate, formatPercent(user.win_rate));
  setText(p.daily_pnl, formatSigned(user.daily_pnl, cur));
  signClass(p.daily_pnl, user.daily_pnl);
  setText(p.total_pnl, formatSigned(user.total_pnl, cur));
  signClass(p.total_pnl, user.total_pnl);
  const tradesKey = JSON.stringify(user.recent_trades || []);
  if (card.tradesKey !== tradesKey) {
    card.tradesKey = tradesKey;
    clear(p.trades);
    p.trades.appendChild(tradesTable(user.recent_trades, ctx));
    recheck(p.trades);
  }
  const sig = signatureOf(user);
  const changed = card.signature !== null && sig !== card.signature;
  card.signature = sig;
  return changed;
}
