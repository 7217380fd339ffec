/* DOM helpers. Data enters the page only as textContent or attribute values of elements made
 * with createElement: nothing in the dashboard ever assigns innerHTML. */

import { isKnown } from "./format.js";

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) { node.className = className; }
  if (text !== undefined && text !== null) { node.textContent = String(text); }
  return node;
}

export function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

export function setText(node, text) { if (node && node.textContent !== text) { node.textContent = text; } }

export function signClass(node, v) {
  node.classList.remove("pos", "neg");
  if (isKnown(v) && Number(v) > 0) { node.classList.add("pos"); }
  if (isKnown(v) && Number(v) < 0) { node.classList.add("neg"); }
}

/* A horizontal scroll box that says when it scrolls: {wrap, box}. Put content into ``box`` and
 * call `recheck(box)`; ``wrap`` carries the class "overflowing" (a visible hint and an edge
 * shadow in the stylesheet) while the content is wider than the box. Made once per place. */
export function scrollBox(className) {
  const box = el("div", "scroll-x " + (className || ""));
  const hint = el("p", "scroll-hint", "scroll sideways for more \u2192");
  const wrap = el("div", "scroll-wrap");
  wrap.appendChild(box);
  wrap.appendChild(hint);
  watchOverflow(box, wrap);
  return { wrap: wrap, box: box };
}

let resizeWatch = null;
const watched = new Map();   // scroll box -> the element that carries the "overflowing" class (page-local)

function check(box) {
  const holder = watched.get(box);
  if (holder) { holder.classList.toggle("overflowing", box.scrollWidth > box.clientWidth + 1); }
}

/* Keep ``holder``'s "overflowing" class in step with ``box`` (on resize; call recheck after a change). */
export function watchOverflow(box, holder) {
  watched.set(box, holder);
  if (!resizeWatch && "ResizeObserver" in window) {
    resizeWatch = new ResizeObserver(function (entries) { entries.forEach(function (e) { check(e.target); }); });
  }
  if (resizeWatch) { resizeWatch.observe(box); }
  requestAnimationFrame(function () { check(box); });
}

/* Stop watching ``box`` (its card left the page). */
export function unwatch(box) {
  if (resizeWatch) { resizeWatch.unobserve(box); }
  watched.delete(box);
}

export function recheck(box) { requestAnimationFrame(function () { check(box); }); }
