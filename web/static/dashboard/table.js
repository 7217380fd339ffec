/* The compact table view: one row per user, for pages with hundreds of users.
 *
 * The table's head (with its sort buttons, data-sort="name|total|status|pnl") is in the
 * template; `renderTable` fills the body with the users given, in the order given (./order.js
 * sorted and filtered them). A row is data-user-id; its cells carry data-field like the cards.
 * Rows are rebuilt on each update: a few thousand text nodes, no charts, no requests.
 */

import { clear, el, setText, signClass } from "./dom.js";
import { DASH, formatMoney, formatPercent, formatSigned, isKnown } from "./format.js";
import { partialMark, showPartial } from "./cards.js";
import { statusCell, summaryOf } from "./status.js";

function cell(tr, className, field, text) {
  const td = el("td", className, text);
  if (field) { td.setAttribute("data-field", field); }
  tr.appendChild(td);
  return td;
}

function row(user, cur) {
  const tr = el("tr");
  tr.setAttribute("data-user-id", user.user_id);
  const summary = summaryOf(user);
  tr.setAttribute("data-worst", summary.worst);
  if (summary.counts.error) { tr.classList.add("failing"); }
  const who = cell(tr, "user-cell", "name");
  who.appendChild(el("span", "user-name", user.name || user.user_id));
  if (user.name && user.name !== user.user_id) { who.appendChild(el("span", "user-id muted", user.user_id)); }
  const total = cell(tr, "num money", null);
  const value = el("span", "total", formatMoney(user.total, cur));
  value.setAttribute("data-field", "total");
  const mark = partialMark("partial");
  showPartial(mark, user.total, user.partial);
  total.appendChild(value);
  total.appendChild(mark);
  cell(tr, "status-cell", "status").appendChild(statusCell(user));
  const n = Object.keys(user.status || user.brokers || {}).length;
  cell(tr, "num", "accounts", String(n));
  const daily = cell(tr, "num money", "daily_pnl", formatSigned(user.daily_pnl, cur));
  signClass(daily, user.daily_pnl);
  const pnl = cell(tr, "num money", "total_pnl", formatSigned(user.total_pnl, cur));
  signClass(pnl, user.total_pnl);
  cell(tr, "num", "total_trades", isKnown(user.total_trades) ? String(user.total_trades) : DASH);
  cell(tr, "num", "win_rate", formatPercent(user.win_rate));
  return tr;
}

/* Fill ``tbody`` with a row per user of ``users`` (already sorted and filtered). */
export function renderTable(tbody, users, ctx) {
  clear(tbody);
  const rows = document.createDocumentFragment();
  users.forEach(function (user) { rows.appendChild(row(user, ctx.cur)); });
  tbody.appendChild(rows);
}

/* Mark the sorted column of ``table`` (aria-sort on its th, an arrow on its button). */
export function markSort(table, sort) {
  table.querySelectorAll("th[data-sort-key]").forEach(function (th) {
    const key = th.getAttribute("data-sort-key");
    const active = key === sort.key;
    if (active) {
      th.setAttribute("aria-sort", sort.dir === -1 ? "descending" : "ascending");
    } else {
      th.removeAttribute("aria-sort");
    }
    const arrow = th.querySelector(".sort-arrow");
    if (arrow) { setText(arrow, active ? (sort.dir === -1 ? "\u25bc" : "\u25b2") : ""); }
  });
}
