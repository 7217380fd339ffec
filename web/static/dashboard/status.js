/* Account statuses: badges, broker lines, a user's status summary and the fleet's counts.
 *
 * The words: an account is "ok", "stale" (a failed read kept its last good value), "error"
 * (shown as failing: never read successfully), "not_configured" or "pending" (not read yet).
 * Error classes come from each status entry's `error_class` field, never parsed from text.
 * A user "fails" when one of its accounts is in error, is "stale" when one is stale; failing
 * accounts and users come first wherever the page lists them.
 */

import { el } from "./dom.js";
import { formatAge, formatMoney, isKnown, DASH } from "./format.js";

export const STATUSES = ["error", "stale", "pending", "not_configured", "ok"];   // worst first
const RANK = { error: 0, stale: 1, pending: 2, not_configured: 3, ok: 4 };

/* One broker's status entry, whatever the API spells: {status, age_seconds, error, ...} or a bare string. */
export function statusOf(entry) {
  if (!entry) { return { status: "pending" }; }
  if (typeof entry === "string") { return { status: entry }; }
  return entry;
}

export function rankOf(status) { return RANK[status] === undefined ? 2 : RANK[status]; }

function errorClass(st) { return st.error_class ? String(st.error_class) : "unknown error"; }

export function badgeFor(st) {
  const status = st.status || "pending";
  const badge = el("span", "badge badge-" + status.replace(/[^a-z_]/gi, ""));
  let title = st.error ? String(st.error) : "";
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

/* The broker names of an owner, failing ones first (then configuration order). */
export function brokerOrder(brokers, statuses) {
  const names = Object.keys(brokers || {});
  Object.keys(statuses || {}).forEach(function (b) { if (names.indexOf(b) < 0) { names.push(b); } });
  return names.map(function (name, i) { return { name: name, i: i, rank: Math.min(rankOf(statusOf((statuses || {})[name]).status), 2) }; })
    .sort(function (a, b) { return a.rank - b.rank || a.i - b.i; })
    .map(function (x) { return x.name; });
}

export function brokerLines(brokers, statuses, cur) {
  const list = el("ul", "brokers");
  const names = brokerOrder(brokers, statuses);
  if (!names.length) { list.appendChild(el("li", "muted", "no enabled brokers")); }
  names.forEach(function (name) {
    const st = statusOf((statuses || {})[name]);
    const li = el("li", "broker");
    li.setAttribute("data-broker", name);
    li.setAttribute("data-status", st.status || "pending");
    li.appendChild(el("span", "broker-name", name.toUpperCase()));
    const value = (brokers || {})[name];
    li.appendChild(el("span", "broker-value money", st.status === "not_configured" && !isKnown(value) ? DASH : formatMoney(value, cur)));
    li.appendChild(badgeFor(st));
    if ((st.status === "not_configured" || st.status === "error") && st.error) {
      li.appendChild(el("span", "reason", String(st.error)));
    }
    if (st.unpriced && st.unpriced.length) {
      const reason = el("span", "reason unpriced", "unpriced: " + st.unpriced.join(", "));
      reason.setAttribute("title", "held but not valued: no market prices it in the base currency");
      li.appendChild(reason);
    }
    list.appendChild(li);
  });
  return list;
}

/* A user's (or the master's) accounts in short: {worst, counts {status: n}, unpriced [assets]}. */
export function summaryOf(owner) {
  const counts = { ok: 0, stale: 0, error: 0, not_configured: 0, pending: 0 };
  const unpriced = [];
  let worst = "ok";
  brokerOrder(owner.brokers, owner.status).forEach(function (name) {
    const st = statusOf((owner.status || {})[name]);
    const status = counts[st.status] === undefined ? "pending" : st.status;
    counts[status] += 1;
    if (rankOf(status) < rankOf(worst)) { worst = status; }
    (st.unpriced || []).forEach(function (a) { if (unpriced.indexOf(a) < 0) { unpriced.push(String(a)); } });
  });
  return { worst: worst, counts: counts, unpriced: unpriced };
}

/* The attention group of a user: 0 failing (an account in error), 1 stale, 2 the rest. */
export function attentionOf(owner) {
  const s = summaryOf(owner);
  return s.counts.error ? 0 : (s.counts.stale ? 1 : 2);
}

/* Account counts over the master and ``users``: {ok, stale, error, not_configured, pending, unpriced, accounts}. */
export function fleetCounts(master, users) {
  const total = { ok: 0, stale: 0, error: 0, not_configured: 0, pending: 0, unpriced: 0, accounts: 0 };
  (master ? [master] : []).concat(users || []).forEach(function (owner) {
    const s = summaryOf(owner);
    STATUSES.forEach(function (k) { total[k] += s.counts[k]; total.accounts += s.counts[k]; });
    Object.keys(owner.status || {}).forEach(function (b) {
      const st = statusOf(owner.status[b]);
      if (st.unpriced && st.unpriced.length) { total.unpriced += 1; }
    });
  });
  return total;
}

/* The status cell of a table row: a badge per account that is not ok ("ok" when all are). */
export function statusCell(owner) {
  const box = el("span", "status-list");
  const names = brokerOrder(owner.brokers, owner.status);
  let shown = 0;
  names.forEach(function (name) {
    const st = statusOf((owner.status || {})[name]);
    if (st.status === "ok") { return; }
    const item = el("span", "status-item");
    item.appendChild(el("span", "status-broker", name));
    item.appendChild(badgeFor(st));
    box.appendChild(item);
    shown += 1;
  });
  if (!names.length) { box.appendChild(el("span", "muted", "no accounts")); } else if (!shown) { box.appendChild(badgeFor({ status: "ok" })); }
  const unpriced = summaryOf(owner).unpriced;
  if (unpriced.length) { box.appendChild(el("span", "reason unpriced", "unpriced: " + unpriced.join(", "))); }
  return box;
}
