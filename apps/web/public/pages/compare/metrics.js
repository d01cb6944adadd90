// @ts-check
/**
 * The compare page's "Final metrics" card: one row per run, the best validation loss,
 * perplexity and ROUGE-L marked where the runs differ.
 *
 * @typedef {import('../../lib/api.js').CompareView} CompareView
 * @typedef {CompareView['runs'][number]} CompareRun
 */
import { PALETTE } from '../../lib/chart.js';
import { count, duration, h, num, pill, replace, section } from '../../lib/dom.js';

const HEADINGS = [
  'run',
  'status',
  'final val loss',
  'perplexity',
  'ROUGE-L f',
  'parameters',
  'tokens/s',
  'wall time',
  'backend',
];

export function metricsCard() {
  const tableBox = h('div');
  const element = section('Final metrics', { testid: 'compare-metrics-card' }, tableBox);

  /**
   * @param {CompareView} v
   * @param {string[]} names  the runs' labels, in v.runs' order
   */
  const update = (v, names) => {
    /** @param {(r: CompareRun) => number | null} get @param {'min' | 'max'} best */
    const bestOf = (get, best) => {
      const values = /** @type {number[]} */ (v.runs.map(get).filter((x) => x !== null && Number.isFinite(x)));
      // Nothing to point out when fewer than two runs have the number or they all tie.
      if (values.length < 2 || values.every((x) => x === values[0])) return null;
      return best === 'min' ? Math.min(...values) : Math.max(...values);
    };
    const bestVal = bestOf((r) => r.finalValLoss, 'min');
    const bestPpl = bestOf((r) => r.perplexity, 'min');
    const bestRouge = bestOf((r) => r.rouge, 'max');
    /** @param {number | null} value @param {number | null} best @param {string} text */
    const cell = (value, best, text) => h('td', { class: value !== null && value === best ? 'num best' : 'num' }, text);
    const rows = v.runs.map((r, i) =>
      h(
        'tr',
        { testid: 'compare-row', 'data-run-id': r.id },
        h(
          'td',
          {},
          h('span', { class: 'swatch', style: `background: ${PALETTE[i % PALETTE.length]}` }),
          h('a', { href: `#/runs/${r.id}` }, names[i] ?? r.name),
        ),
        h('td', {}, pill(r.status)),
        cell(r.finalValLoss, bestVal, num(r.finalValLoss)),
        cell(r.perplexity, bestPpl, num(r.perplexity)),
        cell(r.rouge, bestRouge, num(r.rouge, 3)),
        h('td', { class: 'num' }, count(r.params)),
        h('td', { class: 'num' }, num(r.tokensPerSec, 3)),
        h('td', { class: 'num' }, duration(r.wallSeconds)),
        h('td', {}, r.backend ?? '—'),
      ),
    );
    replace(
      tableBox,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table', testid: 'compare-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              HEADINGS.map((t) => h('th', {}, t)),
            ),
          ),
          h('tbody', {}, rows),
        ),
      ),
    );
  };

  return { element, update };
}
