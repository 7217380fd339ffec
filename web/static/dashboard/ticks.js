/* Axis ticks for the history charts.
 *
 * x (time, milliseconds): at most MAX_X_TICKS ticks on round instants of the configured time
 * zone: midnights for spans of two days and more (every 1, 2, 3, 7, 14, 30... days: a 45-day
 * chart gets one a week), else round hours or minutes. Labels "Jan 5" or "16:00".
 *
 * y (money): a flat or nearly flat series is given a span around its value (at least 0.2 % of
 * it and 20 of the currency's smallest units), so the axis shows distinct labels; labels carry
 * as many decimals as the tick step needs (none for a step of 50, two for 0.25), never more
 * than the currency's, so no two labels read the same.
 */

import { dayStart, decimalsFor, formatClock, formatDay, formatMoney, wallClock, zoneOffset } from "./format.js";

export const MAX_X_TICKS = 8;
const SECOND = 1000, MINUTE = 60 * SECOND, HOUR = 60 * MINUTE, DAY = 24 * HOUR;
const DAY_STEPS = [1, 2, 3, 7, 14, 30, 61, 91, 182, 365];
const TIME_STEPS = [10 * SECOND, 30 * SECOND, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE,
                    30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR];

function pick(steps, span, unit) {
  for (let i = 0; i < steps.length; i++) {
    if (span / (steps[i] * unit) <= MAX_X_TICKS - 1) { return steps[i]; }
  }
  return steps[steps.length - 1];
}

/* {values: [ms], unit: "day"|"time", step: ms, withYear} for the x range [min, max] in ``tz``. */
export function timeTicks(min, max, tz) {
  const span = Math.max(0, max - min);
  const values = [];
  if (span >= 2 * DAY) {
    const step = pick(DAY_STEPS, span, DAY);
    let t = dayStart(min, tz, 0);
    if (t < min) { t = dayStart(min, tz, 1); }
    for (let n = 0; t <= max && n < 400; n++) {
      values.push(t);
      t = dayStart(t + HOUR * 2, tz, step);   // from inside the day: safe across DST changes
    }
    const first = wallClock(min, tz).year, last = wallClock(max, tz).year;
    return { values: values, unit: "day", step: step * DAY, withYear: span > 300 * DAY || first !== last };
  }
  const step = pick(TIME_STEPS, span, 1);
  const offset = zoneOffset(min, tz);
  for (let t = Math.ceil((min + offset) / step) * step - offset; t <= max && values.length < 400; t += step) {
    values.push(t);
  }
  return { values: values, unit: "time", step: step, withYear: false };
}

/* The label of tick ``ms`` of a `timeTicks` result. */
export function timeLabel(ms, info, tz) {
  if (info.unit === "day") { return formatDay(ms, tz, info.withYear); }
  const w = wallClock(ms, tz);
  if (w.hour === 0 && w.minute === 0 && w.second === 0) { return formatDay(ms, tz, false); }
  return formatClock(ms, tz, info.step < MINUTE);
}

/* {suggestedMin, suggestedMax} for the y values ``ys`` in ``cur`` (see the module docstring). */
export function yBounds(ys, cur) {
  if (!ys.length) { return {}; }
  let lo = Math.min.apply(null, ys), hi = Math.max.apply(null, ys);
  const unit = Math.pow(10, -decimalsFor(cur));
  const least = Math.max(Math.abs(hi) * 0.002, Math.abs(lo) * 0.002, unit * 20);
  if (hi - lo < least) {
    const mid = (lo + hi) / 2;
    const positive = lo >= 0;
    lo = mid - least / 2;
    hi = mid + least / 2;
    if (positive && lo < 0) { hi -= lo; lo = 0; }
  }
  return { suggestedMin: lo, suggestedMax: hi };
}

/* The decimals a tick step of ``step`` needs, at most ``places``. */
export function stepPlaces(step, places) {
  for (let k = 0; k < places; k++) {
    const scaled = step * Math.pow(10, k);
    if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) { return k; }
  }
  return places;
}

/* The smallest gap between neighbouring tick values (Chart.js tick objects). */
export function tickStep(ticks) {
  let step = Infinity;
  for (let i = 1; i < ticks.length; i++) {
    const d = Math.abs(ticks[i].value - ticks[i - 1].value);
    if (d > 0 && d < step) { step = d; }
  }
  return step;
}

/* The label of y tick ``value`` among ``ticks`` for currency ``cur``. */
export function moneyTick(value, ticks, cur) {
  const step = tickStep(ticks);
  const places = isFinite(step) ? stepPlaces(step, decimalsFor(cur)) : decimalsFor(cur);
  return formatMoney(value, cur, places);
}
