/* The /users dashboard: renders /api/users into cards and keeps them current without reloading.
 *
 * Safety: every string that comes from data (user names, ids, broker names, errors, symbols) is
 * put into the page with textContent or setAttribute on elements made with createElement; this
 * file never assigns innerHTML. Unknown values (null) show as "unknown" or "—", never as 0.
 *
 * Totals are the server's read model: this file adds nothing up. A known total the server marks
 * `partial` (some account stale, failed, not configured, not read yet or partly unpriced) gets a
 * "partial" mark beside it; the average says over how many users it is when some total is
 * unknown. Error classes come from each status entry's `error_class` field, never parsed.
 *
 * Traffic: /api/users every POLL_MS (paused while the tab is hidden); a card's chart data
 * (daily closes + recent snapshots of its accounts) is fetched when the card first scrolls into
 * view, and again only when the user's numbers change (at most once per CHART_MIN_MS) or on
 * the Refresh button, so a page with many users stays well inside the API's rate limit.
 */
(function () {
  "use strict";

  var POLL_MS = 10000;     // overridden by the page's data-poll-seconds
  var CHART_MIN_MS = 30000;
  var CLOSE_DAYS = 90;
  var SNAPSHOT_LIMIT = 30;
  var MAX_TRADES = 5;

  var FIAT_SYMBOLS = { USD: "$", EUR: "\u20ac", GBP: "\u00a3", JPY: "\u00a5" };
  var FIAT = ["USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "NZD", "SEK", "NOK", "DKK", "PLN",
              "SGD", "HKD", "KRW", "TRY", "BRL", "MXN", "ZAR", "INR"];

  var root = document.getElementById("dashboard");
  if (!root) { return; }
  var urls = {
    users: root.getAttribute("data-users-url") || "/api/users",
    refresh: root.getAttribute("data-refresh-url") || "/api/refresh",
    closes: root.getAttribute("data-closes-url") || "/api/user_balances",
    accounts: root.getAttribute("data-accounts-url") || "/api/accounts/",
    login: root.getAttribute("data-login-url") || "/login"
  };
  var csrfHeader = root.getAttribute("data-csrf-header") || "X-CSRF-Token";
  var pollSeconds = Number(root.getAttribute("data-poll-seconds"));
  if (pollSeconds >= 1) { POLL_MS = pollSeconds * 1000; }
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : "";

  var state = {
    currency: "USD",
    cards: {},          // user_id -> {el, parts, chart, signature, chartLoadedAt, visible, loading}
    pollTimer: null,
    inFlight: false
  };

  // ------------------------------------------------------------------ formatting

  function isKnown(v) { return v !== null && v !== undefined && v !== "" && !isNaN(Number(v)); }

  function decimalsFor(cur) { return FIAT.indexOf(cur) >= 0 ? 2 : 8; }

  function formatMoney(v, cur) {
    cur = cur || state.currency;
    if (!isKnown(v)) { return "unknown"; }
    var places = decimalsFor(cur);
    var n = Number(v);
    var text = Math.abs(n).toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
    var negative = n < 0 && Number(text.replace(/,/g, "")) !== 0;
    var sym = FIAT_SYMBOLS[cur];
    if (sym) { return (negative ? "-" : "") + sym + text; }
    return (negative ? "-" : "") + text + " " + cur;
  }

  function formatSigned(v, cur) {
    if (!isKnown(v)) { return "\u2014"; }
    var s = formatMoney(v, cur);
    return Number(v) > 0 ? "+" + s : s;
  }

  function formatPercent(v) {
    if (!isKnown(v)) { return "\u2014"; }
    return (Number(v) * 100).toFixed(1) + "%";     // the API gives a fraction from 0 to 1
  }

  function formatAge(seconds) {
    if (!isKnown(seconds)) { return "never read"; }
    var s = Math.floor(Number(seconds));
    if (s < 60) { return s + "s"; }
    if (s < 3600) { return Math.floor(s / 60) + "m"; }
    if (s < 86400) { return Math.floor(s / 3600) + "h"; }
    return Math.floor(s / 86400) + "d";
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function formatTime(value) {
    if (!value) { return "\u2014"; }
    var d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (isNaN(d.getTime())) { return String(value); }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function errorClass(st) { return st.error_class ? String(st.error_class) : "unknown error"; }

  function ymd(d) { return d.getUTCFullYear() + pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()); }

  // ------------------------------------------------------------------ DOM helpers (no innerHTML)

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function setText(node, text) { if (node.textContent !== text) { node.textContent = text; } }

  function signClass(node, v) {
    node.classList.remove("pos", "neg");
    if (isKnown(v) && Number(v) > 0) { node.classList.add("pos"); }
    if (isKnown(v) && Number(v) < 0) { node.classList.add("neg"); }
  }

  // ------------------------------------------------------------------ broker lines

  /* One broker's status entry, whatever the API spells: {status, age_seconds, error, ...} or a bare string. */
  function statusOf(entry) {
    if (!entry) { return { status: "unknown" }; }
    if (typeof entry === "string") { return { status: entry }; }
    return entry;
  }

  function badgeFor(st) {
    var status = st.status || "unknown";
    var badge = el("span", "badge badge-" + status.replace(/[^a-z_]/gi, ""));
    var title = st.error ? String(st.error) : "";
    if (status === "ok") {
      badge.textContent = "ok";
      if (isKnown(st.age_seconds)) { title = "read " + formatAge(st.age_seconds) + " ago"; }
    } else if (status === "stale") {
      badge.textContent = "stale " + formatAge(st.age_seconds) + " (" + errorClass(st) + ")";
    } else if (status === "error") {
      badge.textContent = "error (" + errorClass(st) + ")";
    } else if (status === "not_configured") {
      badge.textContent = "not configured";
    } else if (status === "pending") {
      badge.textContent = "not read yet";
    } else {
      badge.textContent = status;
    }
    if (title) { badge.setAttribute("title", title); }
    return badge;
  }

  function brokerLines(brokers, statuses, cur) {
    var list = el("ul", "brokers");
    var names = Object.keys(brokers || {});
    Object.keys(statuses || {}).forEach(function (b) { if (names.indexOf(b) < 0) { names.push(b); } });
    if (!names.length) { list.appendChild(el("li", "muted", "no enabled brokers")); }
    names.forEach(function (name) {
      var st = statusOf((statuses || {})[name]);
      var li = el("li", "broker");
      li.setAttribute("data-broker", name);
      li.setAttribute("data-status", st.status || "unknown");
      li.appendChild(el("span", "broker-name", name.toUpperCase()));
      var value = (brokers || {})[name];
      li.appendChild(el("span", "broker-value money", st.status === "not_configured" && !isKnown(value) ? "\u2014" : formatMoney(value, cur)));
      li.appendChild(badgeFor(st));
      if (st.status === "not_configured" && st.error) {
        li.appendChild(el("span", "reason", String(st.error)));
      } else if (st.status === "error" && st.error) {
        li.appendChild(el("span", "reason", String(st.error)));
      }
      if (st.unpriced && st.unpriced.length) {
        li.appendChild(el("span", "reason", "unpriced: " + st.unpriced.join(", ")));
      }
      list.appendChild(li);
    });
    return list;
  }

  // ------------------------------------------------------------------ summary and master

  /* The "partial" mark beside a known total the server marked partial (hidden otherwise). */
  function showPartial(node, total, partial) {
    var show = Boolean(partial) && isKnown(total);
    if (node.hidden === show) { node.hidden = !show; }
  }

  function partialMark(field) {
    var mark = el("span", "partial-mark", "partial");
    mark.setAttribute("data-field", field);
    mark.setAttribute("title", "some account of this total is stale, failed, not configured, not read yet or holds an unpriced asset");
    mark.hidden = true;
    return mark;
  }

  function totalBox(total, mark) {
    var box = el("div", "total-box");
    box.appendChild(total);
    box.appendChild(mark);
    return box;
  }

  function renderSummary(data) {
    var s = data.summary || {};
    var cur = state.currency;
    var count = isKnown(s.user_count) ? s.user_count : (isKnown(s.total_users) ? s.total_users : (data.users || []).length);
    setText(document.getElementById("sum-users"), String(count));
    setText(document.getElementById("sum-capital"), formatMoney(s.total_user_capital, cur));
    showPartial(document.getElementById("sum-capital-partial"), s.total_user_capital, s.partial);
    setText(document.getElementById("sum-average"), formatMoney(s.average_per_user, cur));
    var note = document.getElementById("sum-average-note");
    var counted = isKnown(s.users_counted) ? Number(s.users_counted) : Number(count);
    var over = isKnown(s.average_per_user) && counted < Number(count);
    setText(note, over ? "over " + counted + " of " + count + " users" : "");
    note.hidden = !over;
    setText(document.getElementById("updated-at"), "updated " + formatTime(data.timestamp));
  }

  function renderMaster(data) {
    var section = document.getElementById("master");
    var m = data.master;
    if (!m) { section.hidden = true; return; }
    section.hidden = false;
    var body = document.getElementById("master-body");
    clear(body);
    var head = el("div", "card-head");
    head.appendChild(el("h2", "user-name", m.name || "Master"));
    var total = el("span", "total money", formatMoney(m.total, state.currency));
    total.setAttribute("data-field", "master-total");
    var mark = partialMark("master-partial");
    showPartial(mark, m.total, m.partial);
    head.appendChild(totalBox(total, mark));
    body.appendChild(head);
    body.appendChild(brokerLines(m.brokers, m.status, state.currency));
  }

  // ------------------------------------------------------------------ user cards

  function stat(label, field) {
    var box = el("div", "stat");
    box.appendChild(el("dt", null, label));
    var dd = el("dd", "money", "\u2014");
    dd.setAttribute("data-field", field);
    box.appendChild(dd);
    return { box: box, value: dd };
  }

  function makeCard(user) {
    var card = el("article", "card user-card");
    card.setAttribute("data-user-id", user.user_id);
    var head = el("div", "card-head");
    var titles = el("div", "titles");
    var name = el("h2", "user-name");
    var uid = el("span", "user-id muted");
    titles.appendChild(name);
    titles.appendChild(uid);
    var total = el("span", "total money");
    total.setAttribute("data-field", "total");
    var partial = partialMark("partial");
    head.appendChild(titles);
    head.appendChild(totalBox(total, partial));
    card.appendChild(head);
    var brokers = el("div", "broker-box");
    card.appendChild(brokers);
    var stats = el("dl", "stats");
    var parts = { name: name, uid: uid, total: total, partial: partial, brokers: brokers };
    [["Total trades", "total_trades"], ["Win rate", "win_rate"], ["Daily P&L", "daily_pnl"], ["Total P&L", "total_pnl"]]
      .forEach(function (pair) { var s = stat(pair[0], pair[1]); stats.appendChild(s.box); parts[pair[1]] = s.value; });
    card.appendChild(stats);
    var chartBox = el("div", "chart-box");
    var canvas = el("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "balance history of " + user.user_id);
    chartBox.appendChild(canvas);
    var chartNote = el("p", "chart-note muted", "loading history\u2026");
    chartBox.appendChild(chartNote);
    card.appendChild(chartBox);
    card.appendChild(el("h3", "trades-title", "Recent trades"));
    var trades = el("div", "trades-box");
    card.appendChild(trades);
    parts.canvas = canvas;
    parts.chartNote = chartNote;
    parts.trades = trades;
    return { el: card, parts: parts, chart: null, signature: null, chartLoadedAt: 0, visible: false, loading: false, user: user };
  }

  function tradesTable(trades, cur) {
    if (!trades || !trades.length) { return el("p", "muted", "no trades recorded"); }
    var table = el("table", "trades");
    var thead = el("thead");
    var hr = el("tr");
    [["Time", ""], ["Broker", ""], ["Symbol", ""], ["Side", ""], ["Amount", "num"], ["Price", "num"], ["P&L", "num"]]
      .forEach(function (h) { hr.appendChild(el("th", h[1], h[0])); });
    thead.appendChild(hr);
    table.appendChild(thead);
    var tbody = el("tbody");
    trades.slice(0, MAX_TRADES).forEach(function (t) {
      var tr = el("tr");
      var when = el("td", "nowrap", formatTime(t.executed_at || t.timestamp).slice(5));
      when.setAttribute("title", formatTime(t.executed_at || t.timestamp));
      tr.appendChild(when);
      tr.appendChild(el("td", null, t.broker || "\u2014"));
      tr.appendChild(el("td", null, t.symbol || "\u2014"));
      tr.appendChild(el("td", "side side-" + String(t.side || "").replace(/[^a-z]/gi, ""), t.side || "\u2014"));
      tr.appendChild(el("td", "num", isKnown(t.amount) ? String(t.amount) : "\u2014"));
      tr.appendChild(el("td", "num", isKnown(t.price) ? String(t.price) : "\u2014"));
      var pnl = el("td", "num", formatSigned(t.pnl, cur));
      signClass(pnl, t.pnl);
      tr.appendChild(pnl);
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    return table;
  }

  function signatureOf(user) {
    return JSON.stringify([user.total, user.partial, user.brokers, user.total_trades, user.total_pnl]);
  }

  function updateCard(card, user) {
    var p = card.parts;
    var cur = state.currency;
    card.user = user;
    setText(p.name, user.name || user.user_id);
    setText(p.uid, user.name && user.name !== user.user_id ? user.user_id : "");
    setText(p.total, formatMoney(user.total, cur));
    showPartial(p.partial, user.total, user.partial);
    clear(p.brokers);
    p.brokers.appendChild(brokerLines(user.brokers, user.status, cur));
    setText(p.total_trades, isKnown(user.total_trades) ? String(user.total_trades) : "\u2014");
    setText(p.win_rate, formatPercent(user.win_rate));
    setText(p.daily_pnl, formatSigned(user.daily_pnl, cur));
    signClass(p.daily_pnl, user.daily_pnl);
    setText(p.total_pnl, formatSigned(user.total_pnl, cur));
    signClass(p.total_pnl, user.total_pnl);
    clear(p.trades);
    p.trades.appendChild(tradesTable(user.recent_trades, cur));
    var sig = signatureOf(user);
    var changed = card.signature !== null && sig !== card.signature;
    card.signature = sig;
    if (changed && card.visible && Date.now() - card.chartLoadedAt >= CHART_MIN_MS) { loadChart(card); }
  }

  function renderUsers(data) {
    var container = document.getElementById("users");
    var users = data.users || [];
    var seen = {};
    var empty = document.getElementById("users-empty");
    empty.hidden = users.length > 0;
    users.forEach(function (user, index) {
      seen[user.user_id] = true;
      var card = state.cards[user.user_id];
      if (!card) {
        card = makeCard(user);
        state.cards[user.user_id] = card;
        observe(card);
      }
      updateCard(card, user);
      var at = container.children[index];
      if (at !== card.el) { container.insertBefore(card.el, at || null); }   // server order: by total, highest first
    });
    Object.keys(state.cards).forEach(function (id) {
      if (!seen[id]) {
        var gone = state.cards[id];
        if (gone.chart) { gone.chart.destroy(); }
        if (observer) { observer.unobserve(gone.el); }
        gone.el.remove();
        delete state.cards[id];
      }
    });
  }

  function render(data) {
    state.currency = data.base_currency || state.currency;
    renderSummary(data);
    renderMaster(data);
    renderUsers(data);
    root.setAttribute("data-loaded", "true");
  }

  // ------------------------------------------------------------------ chart

  var observer = null;
  if ("IntersectionObserver" in window) {
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        var id = entry.target.getAttribute("data-user-id");
        var card = state.cards[id];
        if (!card) { return; }
        card.visible = entry.isIntersecting;
        if (card.visible && !card.chartLoadedAt && !card.loading) { loadChart(card); }
      });
    }, { rootMargin: "200px" });
  }

  function observe(card) {
    if (observer) { observer.observe(card.el); } else { card.visible = true; setTimeout(function () { loadChart(card); }, 0); }
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (r.status === 401) { goLogin(); throw new Error("not logged in"); }
      if (!r.ok) { return r.json().catch(function () { return {}; }).then(function (b) { throw new Error(b.title || b.detail || ("HTTP " + r.status)); }); }
      return r.json();
    });
  }

  /* The sum over the user's accounts at every snapshot time, once each account has been seen. */
  function snapshotSeries(lists) {
    var all = [];
    lists.forEach(function (list, i) {
      (list || []).forEach(function (s) {
        var t = Date.parse(s.captured_at);
        if (!isNaN(t) && isKnown(s.balance)) { all.push({ t: t, i: i, v: Number(s.balance) }); }
      });
    });
    all.sort(function (a, b) { return a.t - b.t; });
    var needed = lists.filter(function (l) { return l && l.length; }).length;
    var last = {};
    var points = [];
    all.forEach(function (p) {
      last[p.i] = p.v;
      var keys = Object.keys(last);
      if (keys.length < needed) { return; }
      var sum = keys.reduce(function (acc, k) { return acc + last[k]; }, 0);
      if (points.length && points[points.length - 1].x === p.t) { points[points.length - 1].y = sum; } else { points.push({ x: p.t, y: sum }); }
    });
    return points;
  }

  /* An x-axis label: the day for spans over two days, else the time (with seconds under two hours). */
  function timeTick(ms, span) {
    var d = new Date(ms);
    if (span > 2 * 86400000) { return pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }
    var hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return span > 2 * 3600000 ? hm : hm + ":" + pad(d.getSeconds());
  }

  function closeSeries(closes) {
    var now = Date.now();
    return (closes || []).filter(function (c) { return c.totalBalance && isKnown(c.totalBalance.amount); }).map(function (c) {
      var d = String(c.day);
      // a daily close is the balance at the end of its day (today's, provisional, is the balance now)
      var end = Date.UTC(Number(d.slice(0, 4)), Number(d.slice(4, 6)) - 1, Number(d.slice(6, 8)), 23, 59);
      return { x: Math.min(end, now), y: Number(c.totalBalance.amount) };
    });
  }

  function loadChart(card) {
    if (typeof window.Chart === "undefined") { setText(card.parts.chartNote, "chart library missing"); return; }
    card.loading = true;
    card.chartLoadedAt = Date.now();
    var user = card.user;
    var to = new Date();
    var from = new Date(to.getTime() - CLOSE_DAYS * 86400000);
    var closesUrl = urls.closes + "?user=" + encodeURIComponent(user.user_id) + "&from=" + ymd(from) + "&to=" + ymd(to);
    var accounts = Object.keys(user.brokers || {});
    var requests = [getJSON(closesUrl)].concat(accounts.map(function (broker) {
      var id = user.user_id + ":" + broker;
      return getJSON(urls.accounts + encodeURIComponent(id) + "/balance-snapshots?limit=" + SNAPSHOT_LIMIT).then(function (body) {
        return Array.isArray(body) ? body : (body.snapshots || []);
      }, function () { return []; });
    }));
    Promise.all(requests).then(function (results) {
      var closes = closeSeries(results[0]);
      var snaps = snapshotSeries(results.slice(1));
      drawChart(card, closes, snaps);
    }).catch(function (err) {
      setText(card.parts.chartNote, "history unavailable: " + err.message);
    }).then(function () { card.loading = false; });
  }

  function drawChart(card, closes, snaps) {
    var note = card.parts.chartNote;
    var canvas = card.parts.canvas;
    if (!closes.length && !snaps.length) {
      if (card.chart) { card.chart.destroy(); card.chart = null; }
      setText(note, "no history yet");
      note.hidden = false;
      canvas.hidden = true;
      canvas.setAttribute("data-chart-ready", "empty");
      return;
    }
    note.hidden = true;
    canvas.hidden = false;
    var xs = closes.concat(snaps).map(function (p) { return p.x; });
    var xmin = Math.min.apply(null, xs);
    var xmax = Math.max.apply(null, xs);
    if (xmax - xmin < 60000) { xmin -= 30000; xmax += 30000; }   // one instant: give it some width
    var margin = (xmax - xmin) * 0.03;                               // keep the end points inside the plot
    xmin -= margin;
    xmax += margin;
    var cur = state.currency;
    var datasets = [
      { label: "Daily close", data: closes, borderColor: "#2563eb", backgroundColor: "#2563eb", pointRadius: 3, borderWidth: 2, tension: 0 },
      { label: "Recent snapshots", data: snaps, borderColor: "#16a34a", backgroundColor: "rgba(22,163,74,0.12)", pointRadius: 2, borderWidth: 2, stepped: "before", fill: false }
    ];
    if (card.chart) {
      card.chart.data.datasets[0].data = closes;
      card.chart.data.datasets[1].data = snaps;
      card.chart.options.scales.x.min = xmin;
      card.chart.options.scales.x.max = xmax;
      card.chart.update("none");
      return;
    }
    card.chart = new window.Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", min: xmin, max: xmax, ticks: { maxTicksLimit: 5, callback: function (v) {
            return timeTick(v, this.max - this.min);
          } } },
          y: { ticks: { maxTicksLimit: 5, callback: function (v) { return formatMoney(v, cur); } } }
        },
        plugins: {
          legend: { labels: { boxWidth: 12 } },
          tooltip: { callbacks: {
            title: function (items) { return items.length ? formatTime(new Date(items[0].parsed.x).toISOString()) : ""; },
            label: function (item) { return item.dataset.label + ": " + formatMoney(item.parsed.y, cur); }
          } }
        }
      }
    });
    canvas.setAttribute("data-chart-ready", "true");
  }

  // ------------------------------------------------------------------ updating

  function banner(message) {
    var b = document.getElementById("banner");
    if (message) { b.textContent = message; b.hidden = false; } else { b.hidden = true; b.textContent = ""; }
  }

  function goLogin() { window.location.assign(urls.login + "?next=" + encodeURIComponent(window.location.pathname)); }

  function poll() {
    if (state.inFlight) { return Promise.resolve(); }
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
    var button = document.getElementById("refresh");
    button.disabled = true;
    button.textContent = "Refreshing\u2026";
    var headers = { Accept: "application/json" };
    headers[csrfHeader] = csrfToken;
    return fetch(urls.refresh, { method: "POST", credentials: "same-origin", headers: headers }).then(function (r) {
      if (r.status === 401) { goLogin(); return; }
      if (!r.ok) { return r.json().catch(function () { return {}; }).then(function (b) { banner("Refresh failed: " + (b.detail || b.title || ("HTTP " + r.status))); }); }
      Object.keys(state.cards).forEach(function (id) { state.cards[id].chartLoadedAt = 0; });
      return poll().then(function () {
        Object.keys(state.cards).forEach(function (id) { var c = state.cards[id]; if (c.visible) { loadChart(c); } });
      });
    }).catch(function (err) { banner("Refresh failed: " + err.message); }).then(function () {
      button.disabled = false;
      button.textContent = "Refresh";
      schedule();
    });
  }

  document.getElementById("refresh").addEventListener("click", refreshNow);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { poll(); } });

  var initial = document.getElementById("initial-data");
  var first = null;
  if (initial && initial.textContent.trim()) {
    try { first = JSON.parse(initial.textContent); } catch (e) { first = null; }
  }
  if (first) { render(first); } else { poll(); }
  schedule();

  window.multibalanceDashboard = { poll: poll, refresh: refreshNow, cards: state.cards };
}());
