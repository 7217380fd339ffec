/* Formatting for the dashboard: money, signs, percentages, ages, and times in the configured
 * time zone (settings.timezone, handed to the page as data-timezone).
 *
 * Contract: unknown (null, undefined, "", not a number) is "unknown" for money and "\u2014"
 * for signed figures and percentages, never "$0.00". Money is only formatted here (the server
 * computed it); the places are the currency's (2 for fiat, 8 otherwise) unless a caller asks
 * for fewer (axis ticks).
 */

export const DASH = "\u2014";

const FIAT_SYMBOLS = { USD: "$", EUR: "\u20ac", GBP: "\u00a3", JPY: "\u00a5" };
const FIAT = ["USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "NZD", "SEK", "NOK", "DKK", "PLN",
              "SGD", "HKD", "KRW", "TRY", "BRL", "MXN", "ZAR", "INR"];

export function isKnown(v) { return v !== null && v !== undefined && v !== "" && !isNaN(Number(v)); }

export function decimalsFor(cur) { return FIAT.indexOf(cur) >= 0 ? 2 : 8; }

/* ``v`` in ``cur`` ("$1,234.56", "0.12000000 BTC"); ``places`` overrides the currency's. */
export function formatMoney(v, cur, places) {
  if (!isKnown(v)) { return "unknown"; }
  if (places === undefined || places === null) { places = decimalsFor(cur); }
  const n = Number(v);
  const text = Math.abs(n).toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
  const negative = n < 0 && Number(text.replace(/,/g, "")) !== 0;
  const sym = FIAT_SYMBOLS[cur];
  if (sym) { return (negative ? "-" : "") + sym + text; }
  return (negative ? "-" : "") + text + " " + cur;
}

export function formatSigned(v, cur) {
  if (!isKnown(v)) { return DASH; }
  const s = formatMoney(v, cur);
  return Number(v) > 0 ? "+" + s : s;
}

/* The API gives win rates as a fraction from 0 to 1. */
export function formatPercent(v) {
  if (!isKnown(v)) { return DASH; }
  return (Number(v) * 100).toFixed(1) + "%";
}

export function formatAge(seconds) {
  if (!isKnown(seconds)) { return "never read"; }
  const s = Math.floor(Number(seconds));
  if (s < 60) { return s + "s"; }
  if (s < 3600) { return Math.floor(s / 60) + "m"; }
  if (s < 86400) { return Math.floor(s / 3600) + "h"; }
  return Math.floor(s / 86400) + "d";
}

// ------------------------------------------------------------------ time zones

const partFormats = {};

/* A known IANA zone name, else "UTC" (the server validated it; an old browser may not know it). */
export function checkZone(tz) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz }).format(0);
    return tz;
  } catch (e) {
    return "UTC";
  }
}

/* The wall-clock fields of instant ``ms`` in ``tz``: {year, month (1..12), day, hour, minute, second}. */
export function wallClock(ms, tz) {
  let fmt = partFormats[tz];
  if (!fmt) {
    fmt = partFormats[tz] = new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    });
  }
  const out = {};
  fmt.formatToParts(new Date(ms)).forEach(function (p) {
    if (p.type !== "literal") { out[p.type] = Number(p.value); }
  });
  if (out.hour === 24) { out.hour = 0; }
  return out;
}

/* How far ``tz``'s wall clock is ahead of UTC at instant ``ms``, in milliseconds. */
export function zoneOffset(ms, tz) {
  const w = wallClock(ms, tz);
  const wall = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

/* The instant of midnight starting calendar day (year, month 1..12, day) in ``tz``. */
export function midnightOf(year, month, day, tz) {
  const guess = Date.UTC(year, month - 1, day);
  let t = guess - zoneOffset(guess, tz);
  t = guess - zoneOffset(t, tz);           // a second pass settles a DST change near midnight
  return t;
}

/* The instant of the midnight that starts ``ms``'s day in ``tz``, moved by ``days`` calendar days. */
export function dayStart(ms, tz, days) {
  const w = wallClock(ms, tz);
  const d = new Date(Date.UTC(w.year, w.month - 1, w.day + (days || 0)));
  return midnightOf(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), tz);
}

function pad(n) { return (n < 10 ? "0" : "") + n; }

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/* "2026-01-21 16:00" in ``tz`` for an ISO string, a Date or Unix seconds; DASH for nothing. */
export function formatTime(value, tz) {
  if (!value) { return DASH; }
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (isNaN(d.getTime())) { return String(value); }
  const w = wallClock(d.getTime(), tz);
  return w.year + "-" + pad(w.month) + "-" + pad(w.day) + " " + pad(w.hour) + ":" + pad(w.minute);
}

/* "Jan 5" (with the year: "Jan 5, 2026") for instant ``ms`` in ``tz``. */
export function formatDay(ms, tz, withYear) {
  const w = wallClock(ms, tz);
  return MONTHS[w.month - 1] + " " + w.day + (withYear ? ", " + w.year : "");
}

/* "16:05" (with seconds: "16:05:09") for instant ``ms`` in ``tz``. */
export function formatClock(ms, tz, seconds) {
  const w = wallClock(ms, tz);
  return pad(w.hour) + ":" + pad(w.minute) + (seconds ? ":" + pad(w.second) : "");
}
