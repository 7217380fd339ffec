/* The order and the filter of the users shown (the same for the cards and the table).
 *
 * Sorts (``sort = {key, dir}``, dir 1 ascending or -1 descending):
 *   attention  failing users first (an account in error), then stale ones, then the rest; within
 *              each group the server's order (by total, highest first, unknown last). The default.
 *   name       by name (the user id when there is none), case-insensitive.
 *   total      by total; unknown totals last whichever the direction.
 *   status     by the worst account status (error, stale, not read yet, not configured, ok).
 *   pnl        by total P&L; unknown last whichever the direction.
 * Ties keep the server's order.
 *
 * Filter (``filter = {text, status}``): ``text`` matches a substring of the user id or name
 * (case-insensitive); ``status`` "" (all), "ok" (every account ok), or a status some account has
 * ("error", "stale", "not_configured", "pending"), or "unpriced" (some account holds an asset
 * without a price).
 */

import { isKnown } from "./format.js";
import { attentionOf, rankOf, summaryOf } from "./status.js";

export const SORT_KEYS = ["attention", "name", "total", "status", "pnl"];
export const DEFAULT_DIR = { attention: 1, name: 1, total: -1, status: 1, pnl: -1 };

function nameOf(u) { return String(u.name || u.user_id).toLowerCase(); }

function byNumber(field, dir) {
  return function (a, b) {
    const x = a.user[field], y = b.user[field];
    const kx = isKnown(x), ky = isKnown(y);
    if (kx !== ky) { return kx ? -1 : 1; }             // unknown last, in both directions
    if (!kx) { return 0; }
    return dir * (Number(x) - Number(y));
  };
}

function comparator(sort) {
  const dir = sort.dir === -1 ? -1 : 1;
  switch (sort.key) {
    case "name": return function (a, b) { return dir * (nameOf(a.user) < nameOf(b.user) ? -1 : nameOf(a.user) > nameOf(b.user) ? 1 : 0); };
    case "total": return byNumber("total", dir);
    case "pnl": return byNumber("total_pnl", dir);
    case "status": return function (a, b) { return dir * (a.rank - b.rank); };
    default: return function (a, b) { return dir * (a.group - b.group); };
  }
}

/* ``users`` (in the server's order) sorted by ``sort``: a new array. */
export function sortUsers(users, sort) {
  const rows = users.map(function (user, index) {
    const s = summaryOf(user);
    return { user: user, index: index, group: attentionOf(user), rank: rankOf(s.worst) };
  });
  const compare = comparator(sort || { key: "attention", dir: 1 });
  rows.sort(function (a, b) { return compare(a, b) || a.index - b.index; });
  return rows.map(function (r) { return r.user; });
}

export function matches(user, filter) {
  const text = (filter && filter.text || "").trim().toLowerCase();
  if (text && String(user.user_id).toLowerCase().indexOf(text) < 0 && String(user.name || "").toLowerCase().indexOf(text) < 0) {
    return false;
  }
  const status = filter && filter.status;
  if (!status) { return true; }
  const s = summaryOf(user);
  if (status === "ok") { return s.worst === "ok" && Object.keys(user.status || {}).length > 0; }
  if (status === "unpriced") { return s.unpriced.length > 0; }
  return (s.counts[status] || 0) > 0;
}
