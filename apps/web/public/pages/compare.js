// @ts-check
/**
 * #/compare?runs=a,b: two or more runs side by side (GET /v1/compare?runs=...): their train
 * and validation loss overlaid (histories aligned on the global step), a table of final
 * metrics, and the curriculum fields that differ (differences[]). Without two runs in the
 * hash it offers a picker of recent runs (GET /v1/runs). Refreshed every 2 s while one of the
 * compared runs is queued or running.
 */
import { api, poll, POLL_MS } from '../lib/api.js';
import { lineChart, PALETTE } from '../lib/chart.js';
import { count, duration, h, isActive, notice, num, pill, replace, section } from '../lib/dom.js';

/**
 * @typedef {import('../lib/api.js').CompareView} CompareView
 * @typedef {CompareView['runs'][number]} CompareRun
 * @typedef {CompareView['histories'][string][number]} HistoryRow
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

  /** @type {Array<{ destroy(): void }>} */
  const charts = [];
  /** @type {CompareView | undefined} */
  let view;
  /** @type {ReturnType<typeof lineChart> | undefined} */
  let trainChart;
  /** @type {ReturnType<typeof lineChart> | undefined} */
  let valChart;
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
    renderView(view);
    root.dataset.state = 'ready';
  };

  /** Names as labels, with a short id where two runs share a name. */
  const labels = (/** @type {CompareRun[]} */ runs) => {
    const names = runs.map((r) => r.name);
    return runs.map((r) => (names.filter((n) => n === r.name).length > 1 ? `${r.name} (${r.id.slice(0, 6)})` : r.name));
  };

  const trainBox = h('div', { testid: 'compare-chart' });
  const valBox = h('div', { testid: 'compare-val-chart' });
  const tableBox = h('div');
  const diffBox = h('div');
  replace(
    body,
    section(
      'Train loss',
      { testid: 'compare-train-card' },
      h('p', { class: 'muted small' }, 'By global step (stage offset + step), one line per run.'),
      trainBox,
    ),
    section('Validation loss', { testid: 'compare-val-card' }, valBox),
    section('Final metrics', { testid: 'compare-metrics-card' }, tableBox),
    section('Settings that differ', { testid: 'compare-differences-card' }, diffBox),
  );

  /** @param {CompareView} v */
  const renderView = (v) => {
    const names = labels(v.runs);
    /** @param {HistoryRow[]} rows @returns {import('../lib/chart.js').ChartData} */
    const toData = (rows) => [
      rows.map((r) => r.step),
      ...v.runs.map((run) => rows.map((r) => r.values[run.id] ?? null)),
    ];
    const series = v.runs.map((_r, i) => ({ label: names[i] ?? '', color: PALETTE[i % PALETTE.length] }));
    const trainData = toData(v.histories.trainLoss ?? []);
    const valData = toData(v.histories.valLoss ?? []);
    if (!trainChart) {
      trainChart = lineChart(
        trainBox,
        { series, xLabel: 'step (all stages)', yLabel: 'train loss', height: 300 },
        trainData,
      );
      valChart = lineChart(
        valBox,
        {
          series: series.map((s) => ({ ...s, points: true })),
          xLabel: 'step (all stages)',
          yLabel: 'val loss',
          height: 260,
        },
        valData,
      );
      charts.push(trainChart, valChart);
    } else {
      trainChart.update(trainData);
      valChart?.update(valData);
    }

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
              [
                'run',
                'status',
                'final val loss',
                'perplexity',
                'ROUGE-L f',
                'parameters',
                'tokens/s',
                'wall time',
                'backend',
              ].map((t) => h('th', {}, t)),
            ),
          ),
          h(
            'tbody',
            {},
            v.runs.map((r, i) =>
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
            ),
          ),
        ),
      ),
    );

    replace(
      diffBox,
      v.differences.length
        ? h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              { class: 'table compact', testid: 'compare-differences' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  h('th', {}, 'field'),
                  names.map((n) => h('th', {}, n)),
                ),
              ),
              h(
                'tbody',
                {},
                v.differences.map((d) =>
                  h(
                    'tr',
                    { testid: 'difference-row', 'data-path': d.path },
                    h('td', {}, h('code', {}, d.path)),
                    v.runs.map((r) => {
                      const value = d.values[r.id];
                      return h(
                        'td',
                        { class: value === null || value === undefined ? 'diff absent' : 'diff' },
                        value === null || value === undefined ? '—' : show(value),
                      );
                    }),
                  ),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted', testid: 'compare-no-differences' }, 'The curricula are the same.'),
    );
  };

  const poller = poll(tick, POLL_MS, () => !failed && (!view || view.runs.some((r) => isActive(r.status))));
  return () => {
    poller.stop();
    for (const c of charts) c.destroy();
  };
}

/**
 * The recent runs with checkboxes; "Compare" goes to #/compare?runs=<checked>.
 * @param {HTMLElement} box
 * @param {string[]} ids
 * @param {import('../app.js').PageContext} ctx
 * @param {boolean} collapsed
 */
async function renderPicker(box, ids, ctx, collapsed) {
  const { runs } = /** @type {{ runs: import('../lib/api.js').RunListItem[] }} */ (await api('/v1/runs?limit=50'));
  const checked = new Set(ids);
  const go = /** @type {HTMLButtonElement} */ (
    h(
      'button',
      {
        type: 'button',
        class: 'primary',
        testid: 'compare-go',
        onclick: () => ctx.navigate(`#/compare?runs=${[...checked].join(',')}`),
      },
      'Compare',
    )
  );
  const sync = () => {
    go.disabled = checked.size < 2;
  };
  sync();
  const list = h(
    'div',
    { class: 'picker' },
    runs.length
      ? runs.map((r) =>
          h(
            'label',
            { class: 'pick' },
            h('input', {
              type: 'checkbox',
              testid: 'compare-pick',
              'data-run-id': r.id,
              checked: checked.has(r.id),
              onchange: (/** @type {Event} */ e) => {
                if (/** @type {HTMLInputElement} */ (e.target).checked) checked.add(r.id);
                else checked.delete(r.id);
                sync();
              },
            }),
            ` ${r.name} `,
            pill(r.status),
            h('code', { class: 'id' }, r.id.slice(0, 8)),
          ),
        )
      : h('p', { class: 'muted' }, 'No runs yet.'),
  );
  replace(
    box,
    h(
      'details',
      { class: 'card', open: !collapsed },
      h('summary', {}, h('h2', { class: 'inline' }, 'Runs to compare')),
      list,
      h('div', { class: 'row' }, go),
    ),
  );
}

/** @param {unknown} value */
function show(value) {
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
