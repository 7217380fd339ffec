/* The toolbar: cards or table, the sort, the text and status filters.
 *
 * `Controls(root, onChange)` reads the toolbar elements of the template (#view-cards,
 * #view-table, #sort, #filter-text, #filter-status and the table's sort buttons) and calls
 * ``onChange()`` after any change. The view choice is kept in localStorage under VIEW_KEY;
 * without a stored choice the view is the table for more than TABLE_FROM users, else cards.
 * Clicking the sorted column's button again reverses the direction.
 */

import { DEFAULT_DIR, SORT_KEYS } from "./order.js";

export const VIEW_KEY = "multibalance.dashboard.view";
const TABLE_FROM = 50;

function stored() {
  try { return window.localStorage.getItem(VIEW_KEY); } catch (e) { return null; }
}

function store(view) {
  try { window.localStorage.setItem(VIEW_KEY, view); } catch (e) { /* private mode: not remembered */ }
}

export function Controls(root, onChange) {
  this.onChange = onChange;
  this.view = stored() === "table" || stored() === "cards" ? stored() : null;
  this.sort = { key: "attention", dir: 1 };
  this.filter = { text: "", status: "" };
  const self = this;
  const find = function (id) { return root.querySelector("#" + id); };
  this.cardsButton = find("view-cards");
  this.tableButton = find("view-table");
  this.sortSelect = find("sort");
  this.text = find("filter-text");
  this.status = find("filter-status");
  if (this.cardsButton) { this.cardsButton.addEventListener("click", function () { self.setView("cards", true); }); }
  if (this.tableButton) { this.tableButton.addEventListener("click", function () { self.setView("table", true); }); }
  if (this.sortSelect) {
    this.sortSelect.addEventListener("change", function () { self.setSort(self.sortSelect.value, null); });
  }
  if (this.text) { this.text.addEventListener("input", function () { self.filter.text = self.text.value; self.onChange(); }); }
  if (this.status) { this.status.addEventListener("change", function () { self.filter.status = self.status.value; self.onChange(); }); }
  root.querySelectorAll("button[data-sort]").forEach(function (button) {
    button.addEventListener("click", function () {
      const key = button.getAttribute("data-sort");
      self.setSort(key, self.sort.key === key ? -self.sort.dir : null);
    });
  });
}

/* The view to show for ``userCount`` users: the stored choice, else by count. */
Controls.prototype.viewFor = function (userCount) {
  if (!this.view) { return userCount > TABLE_FROM ? "table" : "cards"; }
  return this.view;
};

Controls.prototype.setView = function (view, remember) {
  this.view = view;
  if (remember) { store(view); }
  this.onChange();
};

Controls.prototype.setSort = function (key, dir) {
  if (SORT_KEYS.indexOf(key) < 0) { key = "attention"; }
  this.sort = { key: key, dir: dir || DEFAULT_DIR[key] };
  if (this.sortSelect && this.sortSelect.value !== key) { this.sortSelect.value = key; }
  this.onChange();
};

Controls.prototype.setStatusFilter = function (status) {
  this.filter.status = status;
  if (this.status) { this.status.value = status; }
  this.onChange();
};

/* Show which view is on (aria-pressed on the two buttons). */
Controls.prototype.mark = function (view) {
  if (this.cardsButton) { this.cardsButton.setAttribute("aria-pressed", String(view === "cards")); }
  if (this.tableButton) { this.tableButton.setAttribute("aria-pressed", String(view === "table")); }
};
