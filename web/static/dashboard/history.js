/* The page's chart data: ONE request to /api/users/history for every card, never one per chart.
 *
 * `HistoryFeed(url, getJSON, onData, onError)`: `want()` asks for the bundle; the first ask
 * loads at once, later ones at most once per MIN_INTERVAL_MS (a later ask inside the interval is
 * served by one trailing load at its end; asks while a load runs are folded into it). `force()`
 * (the Refresh button) loads now unless a load ran in the last FORCE_INTERVAL_MS. So a page
 * makes one history request when it opens and at most two a minute after that, whatever the
 * number of users: far inside the API's rate limit.
 *
 * Single-threaded (the page's event loop): no locks; ``timer`` is the one pending trailing load.
 */

export const MIN_INTERVAL_MS = 30000;
const FORCE_INTERVAL_MS = 5000;

export function HistoryFeed(url, getJSON, onData, onError) {
  this.url = url;
  this.getJSON = getJSON;
  this.onData = onData;
  this.onError = onError;
  this.loadedAt = 0;     // Date.now() of the last load's start (0: never)
  this.loading = false;
  this.again = false;    // asked while loading
  this.timer = null;
  this.data = null;      // the last bundle received
  this.version = 0;      // bumped by every bundle received
}

HistoryFeed.prototype.want = function () {
  if (this.loading) { this.again = true; return; }
  if (this.timer) { return; }
  const wait = this.loadedAt ? this.loadedAt + MIN_INTERVAL_MS - Date.now() : 0;
  if (wait <= 0) { this.load(); return; }
  const self = this;
  this.timer = setTimeout(function () { self.timer = null; self.load(); }, wait);
};

HistoryFeed.prototype.force = function () {
  if (this.loadedAt && Date.now() - this.loadedAt < FORCE_INTERVAL_MS) { this.want(); return; }
  if (this.timer) { clearTimeout(this.timer); this.timer = null; }
  if (this.loading) { this.again = true; return; }
  this.load();
};

HistoryFeed.prototype.load = function () {
  const self = this;
  this.loading = true;
  this.again = false;
  this.loadedAt = Date.now();
  return this.getJSON(this.url).then(function (body) {
    self.data = body;
    self.version += 1;
    self.onData(body);
  }, function (err) {
    self.onError(err);
  }).then(function () {
    self.loading = false;
    if (self.again) { self.want(); }
  });
};
