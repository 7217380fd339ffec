/* The /users dashboard (an ES module): renders /api/users into a fleet tile, cards or a compact
 * table, and keeps them current without reloading.
 *
 * Safety: every string that comes from data (user names, ids, broker names, errors, symbols) is
 * put into the page with textContent or setAttribute on elements made with createElement; no
 * module of the dashboard assigns innerHTML. Unknown values (null) show as "unknown" or "—",
 * never as 0. Totals are the server's read model: the page adds no money up (it counts accounts).
 *
 * Traffic (the API allows 100 requests a minute per token): the first /api/users body comes
 * embedded in the page; then /api/users every POLL_MS (paused while the tab is hidden); the
 * charts of all cards come from ONE /api/users/history request (./dashboard/history.js: at
 * most twice a minute after the first). A 429 pauses the page's requests for its Retry-After.
 *
 * Modules: dashboard/format.js (money, times in the zone), dom.js, status.js (badges, fleet
 * counts, failing first), order.js (sort, filter), cards.js, table.js, controls.js (toolbar),
 * ticks.js and chart.js (history charts), history.js (the one history request).
 */

import { Controls } from "./dashboard/controls.js";
import { makeCard, showPartial, partialMark, totalBox, updateCard } from "./dashboard/cards.js";
import { chartProblem, drawChart } from "./dashboard/chart.js";
import { clear, el, setText, unwatch, watchOverflow } from "./dashboard/dom.js";
import { checkZone, formatMoney, formatTime, isKnown } from "./dashboard/format.js";
import { HistoryFeed } from "./dashboard/history.js";
import { matches, sortUsers } from "./dashboard/order.js";
import { brokerLines, fleetCounts } from "./dashboard/status.js";
import { markSort, renderTable } from "./dashboard/table.js";

const root = document.getElementById("dashboard");
const attr = function (name, fallback) { return (root && root.getAttribute(name)) || fallback; };
const urls = {
  users: attr("data-users-url", "/api/users"),
  refresh: attr("data-refresh-url", "/api/refresh"),
  history: attr("data-history-url", "/api/users/history"),
  login: attr("data-login-url", "/login")
};
const csrfHeader = attr("data-csrf-header", "X-CSRF-Token");
const pollSeconds = Number(attr("data-poll-seconds", "10"));
const POLL_MS = pollSeconds >= 1 ? pollSeconds * 1000 : 10000;
const csrfMeta = document.querySelector('meta[name="csrf-token"]');
const csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : "";

const state = {
  cur: "USD",
  tz: checkZone(attr("data-timezone", "UTC")),
  data: null,          // the last /api/users body
  cards: {},           // user_id -> card (./dashboard/cards.js)
  pollTimer: null,
  inFlight: false,
  pausedUntil: 0,      // Date.now() before which the page sends nothing (after a 429)
  historyWanted: false // the numbers changed while the cards were not shown
};
const byId = function (id) { return document.getElementById(id); };
const ctx = function () { return { cur: state.cur, tz: state.tz, now: Date.now() }; };

// ------------------------------------------------------------------ requests

function goLogin() { window.location.assign(urls.login + "?next=" + encodeURIComponent(window.location.pathname)); }

function problem(r) {
  return r.json().catch(function () { return {}; }).then(function (b) {
    throw new Error(b.title || b.detail || ("HTTP " + r.status));
  });
}

function getJSON(url) {
  if (Date.now() < state.pausedUntil) { return Promise.reject(new Error("rate limited, waiting")); }
  return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
    if (r.status === 401) { goLogin(); throw new Error("not logged in"); }
    if (r.status === 429) { state.pausedUntil = Date.now() + 1000 * (Number(r.headers.get("Retry-After")) || 10); }
    if (!r.ok) { return problem(r); }
    return r.json();
  });
}

function banner(message) {
  const b = byId("banner");
  if (message) { b.textContent = message; b.hidden = false; } else { b.hidden = true; b.textContent = ""; }
}

// ------------------------------------------------------------------ summary, fleet, master

function renderSummary(data) {
  const s = data.summary || {};
  const count = isKnown(s.user_count) ? s.user_count : (isKnown(s.total_users) ? s.total_users : (data.users || []).length);
  setText(byId("sum-users"), String(count));
  setText(byId("sum-capital"), formatMoney(s.total_user_capital, state.cur));
  showPartial(byId("sum-capital-partial"), s.total_user_capital, s.partial);
  setText(byId("sum-average"), formatMoney(s.average_per_user, state.cur));
  const note = byId("sum-average-note");
  const counted = isKnown(s.users_counted) ? Number(s.users_counted) : Number(count);
  const over = isKnown(s.average_per_user) && counted < Number(count);
  setText(note, over ? "over " + counted + " of " + count + " users" : "");
  note.hidden = !over;
  setText(byId("updated-at"), "updated " + formatTime(data.timestamp, state.tz));
}

function renderFleet(data) {
  const counts = fleetCounts(data.master, data.users);
  const fleet = byId("fleet");
  if (!fleet) { return; }
  fleet.querySelectorAll("[data-count]").forEach(function (item) {
    const key = item.getAttribute("data-count");
    const n = counts[key] || 0;
    setText(item.querySelector(".count"), String(n));
    item.classList.toggle("zero", n === 0);
    if (item.hasAttribute("data-optional")) { item.hidden = n === 0; }
  });
  setText(byId("fleet-total"), counts.accounts + (counts.accounts === 1 ? " account" : " accounts"));
  fleet.classList.toggle("has-failing", counts.error > 0);
}

function renderMaster(data) {
  const section = byId("master");
  const m = data.master;
  if (!m) { section.hidden = true; return; }
  section.hidden = false;
  const body = byId("master-body");
  clear(body);
  const head = el("div", "card-head");
  head.appendChild(el("h2", "user-name", m.name || "Master"));
  const total = el("span", "total money", formatMoney(m.total, state.cur));
  total.setAttribute("data-field", "master-total");
  const mark = partialMark("master-partial");
  showPartial(mark, m.total, m.partial);
  head.appendChild(totalBox(total, mark));
  body.appendChild(head);
  body.appendChild(brokerLines(m.brokers, m.status, state.cur));
}

// ------------------------------------------------------------------ users: cards and table

let observer = null;
if ("IntersectionObserver" in window) {
  observer = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      const card = state.cards[entry.target.getAttribute("data-user-id")];
      if (!card) { return; }
      card.visible = entry.isIntersecting;
      drawIfDue(card);
    });
  }, { rootMargin: "200px" });
}

const feed = new HistoryFeed(urls.history, getJSON, function (body) {
  Object.keys(state.cards).forEach(function (id) { drawIfDue(state.cards[id]); });
}, function (err) {
  Object.keys(state.cards).forEach(function (id) { chartProblem(state.cards[id], err.message); });
  feed.want();         // try again after the feed's interval
});

/* Draw a visible card's chart when a newer bundle than the one it shows has arrived. */
function drawIfDue(card) {
  if (!card.visible || !feed.data || card.drawn === feed.version) { return; }
  card.drawn = feed.version;
  const c = ctx();
  const at = Date.parse(feed.data.timestamp);
  c.now = isNaN(at) ? c.now : at;
  drawChart(card, (feed.data.users || {})[card.user.user_id], c);
}

function updateCards(users) {
  const seen = {};
  let changed = false;
  users.forEach(function (user) {
    seen[user.user_id] = true;
    let card = state.cards[user.user_id];
    if (!card) {
      card = state.cards[user.user_id] = makeCard(user);
      if (observer) { observer.observe(card.el); } else { card.visible = true; }
    }
    if (updateCard(card, user, ctx())) { changed = true; }
  });
  Object.keys(state.cards).forEach(function (id) {
    if (seen[id]) { return; }
    const gone = state.cards[id];
    if (gone.chart) { gone.chart.destroy(); }
    if (observer) { observer.unobserve(gone.el); }
    unwatch(gone.parts.trades);
    gone.el.remove();
    delete state.cards[id];
  });
  return changed;
}

/* Show the users in the chosen view, order and filter. */
function layout() {
  const data = state.data;
  if (!data) { return; }
  const users = data.users || [];
  const view = controls.viewFor(users.length);
  controls.mark(view);
  const shown = sortUsers(users, controls.sort).filter(function (u) { return matches(u, controls.filter); });
  const container = byId("users");
  const tableBox = byId("users-table-box");
  container.hidden = view !== "cards";
  tableBox.hidden = view !== "table";
  root.setAttribute("data-view", view);
  if (view === "cards") {
    const visible = {};
    shown.forEach(function (user, index) {
      const card = state.cards[user.user_id];
      visible[user.user_id] = true;
      card.el.hidden = false;
      const at = container.children[index];
      if (at !== card.el) { container.insertBefore(card.el, at || null); }
    });
    Object.keys(state.cards).forEach(function (id) {
      const card = state.cards[id];
      if (!visible[id]) { card.el.hidden = true; if (!card.el.parentNode) { container.appendChild(card.el); } }
    });
    if (state.historyWanted || !feed.loadedAt) { state.historyWanted = false; feed.want(); }
  } else {
    renderTable(byId("users-tbody"), shown, ctx());
    markSort(byId("users-table"), controls.sort);
  }
  byId("users-empty").hidden = users.length > 0;
  const none = byId("users-none");
  none.hidden = !(users.length > 0 && shown.length === 0);
  setText(byId("shown-count"), shown.length === users.length ? users.length + " users" : "showing " + shown.length + " of " + users.length + " users");
}

const controls = new Controls(root || document, layout);

function render(data) {
  state.cur = data.base_currency || state.cur;
  state.data = data;
  renderSummary(data);
  renderFleet(data);
  renderMaster(data);
  if (updateCards(data.users || [])) { state.historyWanted = true; }
  layout();
  root.setAttribute("data-loaded", "true");
}

// ------------------------------------------------------------------ updating

function poll() {
  if (state.inFlight || Date.now() < state.pausedUntil) { return Promise.resolve(); }
  state.inFlight = true;
  return getJSON(urls.users).then(function (data) { render(data); banner(""); }, function (err) {
    banner("Could not update: " + err.message + " \u2014 showing the last data received.");
  }).then(function () { state.inFlight = false; });
}

function schedule() {
  if (state.pollTimer) { clearInterval(state.pollTimer); }
  state.pollTimer = setInterval(function () { if (!document.hidden) { poll(); } }, POLL_MS);
}

function refreshNow() {
  const button = byId("refresh");
  button.disabled = true;
  button.textContent = "Refreshing\u2026";
  const headers = { Accept: "application/json" };
  headers[csrfHeader] = csrfToken;
  return fetch(urls.refresh, { method: "POST", credentials: "same-origin", headers: headers }).then(function (r) {
    if (r.status === 401) { goLogin(); return; }
    if (!r.ok) { return r.json().catch(function () { return {}; }).then(function (b) { banner("Refresh failed: " + (b.detail || b.title || ("HTTP " + r.status))); }); }
    return poll().then(function () {
      if (controls.viewFor((state.data && state.data.users || []).length) === "cards") { feed.force(); } else { state.historyWanted = true; }
    });
  }).catch(function (err) { banner("Refresh failed: " + err.message); }).then(function () {
    button.disabled = false;
    button.textContent = "Refresh";
    schedule();
  });
}

function start() {
  if (!root) { return; }
  byId("refresh").addEventListener("click", refreshNow);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { poll(); } });
  const fleet = byId("fleet");
  if (fleet) {
    fleet.querySelectorAll("button[data-filter]").forEach(function (b) {
      b.addEventListener("click", function () {
        const status = b.getAttribute("data-filter");
        controls.setStatusFilter(controls.filter.status === status ? "" : status);   // again: all users
      });
    });
  }
  setText(byId("timezone"), "times in " + state.tz);
  watchOverflow(byId("users-table-scroll"), byId("users-table-box"));
  const initial = byId("initial-data");
  let first = null;
  if (initial && initial.textContent.trim()) {
    try { first = JSON.parse(initial.textContent); } catch (e) { first = null; }
  }
  if (first) { render(first); } else { poll(); }
  schedule();
  window.multibalanceDashboard = { poll: poll, refresh: refreshNow, cards: state.cards, feed: feed, controls: controls };
}

start();
