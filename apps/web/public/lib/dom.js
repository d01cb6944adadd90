// @ts-check
/**
 * Small DOM and formatting helpers shared by the pages. Everything is built with
 * createElement/textContent: model outputs and run names are never parsed as HTML.
 */

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {Record<string, string | number | boolean | null | undefined | EventListener>} Attrs
 */

/**
 * Creates an element. Attributes: "class", "testid" (→ data-testid), "on<event>" (listener),
 * booleans (set when true), everything else as an attribute. Children: nodes or text.
 * @param {string} tag
 * @param {Attrs} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'testid') el.dataset.testid = String(value);
    else if (key === 'class') el.className = String(value);
    else if (key === 'value' && 'value' in el) /** @type {HTMLInputElement} */ (el).value = String(value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/**
 * @param {Node} el
 * @param {(Child | Child[])[]} children
 */
function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/**
 * Replaces the children of an element.
 * @param {Element} el
 * @param {...(Child | Child[])} children
 */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * The status pill of a run or stage: <span class="pill pill-running">running</span>.
 * @param {string} status
 * @param {string} [testid]
 */
export function pill(status, testid) {
  return h('span', { class: `pill pill-${status}`, testid, 'data-status': status }, status);
}

/**
 * A progress bar from 0..1 with its text.
 * @param {number | null | undefined} fraction
 * @param {string} [label]
 * @param {string} [testid]
 */
export function progressBar(fraction, label, testid) {
  const value = Math.max(0, Math.min(1, fraction ?? 0));
  return h(
    'div',
    { class: 'progress', testid, 'data-progress': value.toFixed(4), title: label ?? pct(value) },
    h('div', { class: 'progress-fill', style: `width: ${(value * 100).toFixed(1)}%` }),
    h('span', { class: 'progress-text' }, label ?? pct(value)),
  );
}

/** @param {number} value */
export function pct(value) {
  return `${Math.round(value * 100)}%`;
}

/**
 * A number with a few significant digits, or "—".
 * @param {number | null | undefined} value
 * @param {number} [digits]
 */
export function num(value, digits = 4) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(2);
  return Number(value.toPrecision(digits)).toString();
}

/**
 * Seconds as "1h 02m", "3m 05s", "12s", or "—".
 * @param {number | null | undefined} seconds
 */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/**
 * A timestamp in local time, short.
 * @param {string | null | undefined} iso
 */
export function time(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? String(iso)
    : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

/**
 * A parameter count as 12.3k / 4.5M.
 * @param {number | null | undefined} n
 */
export function count(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/**
 * The first 8 characters of a uuid, with the whole id as its title.
 * @param {string} id
 */
export function shortId(id) {
  return h('code', { class: 'id', title: id }, id.slice(0, 8));
}

/**
 * A message box: kind "error" | "info" | "ok".
 * @param {string} kind
 * @param {string} text
 * @param {string} [testid]
 */
export function notice(kind, text, testid) {
  return h('div', { class: `notice notice-${kind}`, testid, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/**
 * A section with a title.
 * @param {string} title
 * @param {Attrs} attrs
 * @param {...(Child | Child[])} children
 */
export function section(title, attrs, ...children) {
  return h('section', { class: 'card', ...attrs }, h('h2', {}, title), ...children);
}

/** Statuses after which a run or stage no longer changes. */
export const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** @param {string} status */
export function isActive(status) {
  return status === 'queued' || status === 'running';
}
