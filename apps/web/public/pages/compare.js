// @ts-check
/**
 * #/compare?runs=a,b: two or more runs side by side (GET /v1/compare?runs=...): their train
 * and validation loss overlaid (histories aligned on the global step), a table of final
 * metrics, and the curriculum fields that differ (differences[]). Without two runs in the
 * hash it offers a picker of recent runs (GET /v1/runs). Refreshed every 2 s while one of the
 * compared runs is queued or running. The cards are one module each, in compare/.
 */
import { api, poll, POLL_MS } from '../lib/api.js';
import { h, isActive, notice, replace } from '../lib/dom.js';
import { lossCards } from './compare/charts.js';
import { differencesCard } from './compare/differences.js';
import { metricsCard } from './compare/metrics.js';
import { renderPicker } from './compare/picker.js';

/**
 * @typedef {import('../lib/api.js').CompareView} CompareView
 * @typedef {CompareView['runs'][number]} CompareRun
 */

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').PageContext} ctx
 */
export function render(root, ctx) {
  const ids = (ctx.query.get('runs') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const picker = h('div', { testid: 'compare-picker' });
  const pageError = h('div');
  const body = h('div');
  replace(root, h('div', { class: 'page-title' }, h('h1', {}, 'Compare runs')), pageError, picker, body);

  /** @type {CompareView | undefined} */
  let view;
  let failed = false;

  void renderPicker(picker, ids, ctx, ids.length >= 2).then(
    () => {
      if (ids.length < 2) root.dataset.state = 'ready';
    },
    (error) => {
      replace(pageError, notice('error', error instanceof Error ? error.message : String(error), 'page-error'));
      root.dataset.state = 'error';
    },
  );
  if (ids.length < 2) {
    replace(
      body,
      h(
        'p',
        { class: 'muted', testid: 'compare-hint' },
        'Pick two or more runs to compare (or tick them on the Runs page).',
      ),
    );
    return () => {};
  }

  const losses = lossCards();
  const metrics = metricsCard();
  const differences = differencesCard();
  replace(body, ...losses.elements, metrics.element, differences.element);

  const tick = async () => {
    try {
      view = /** @type {CompareView} */ (await api(`/v1/compare?runs=${ids.map(encodeURIComponent).join(',')}`));
    } catch (error) {
      replace(pageError, notice('error', error instanceof Error ? error.message : String(error), 'page-error'));
      if (!view) {
        root.dataset.state = 'error';
        failed = true;
      }
      throw error;
    }
    replace(pageError);
    const names = labels(view.runs);
    losses.update(view, names);
    metrics.update(view, names);
    differences.update(view, names);
    root.dataset.state = 'ready';
  };

  const poller = poll(tick, POLL_MS, () => !failed && (!view || view.runs.some((r) => isActive(r.status))));
  return () => {
    poller.stop();
    losses.destroy();
  };
}

/**
 * Names as labels, with a short id where two runs share a name.
 * @param {CompareRun[]} runs
 */
function labels(runs) {
  const names = runs.map((r) => r.name);
  return runs.map((r) => (names.filter((n) => n === r.name).length > 1 ? `${r.name} (${r.id.slice(0, 6)})` : r.name));
}
