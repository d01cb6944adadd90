// @ts-check
/**
 * The compare page's train and validation loss cards: one line per run, by global step;
 * the charts are made on the first answer and updated in place after.
 *
 * @typedef {import('../../lib/api.js').CompareView} CompareView
 * @typedef {CompareView['histories'][string][number]} HistoryRow
 */
import { lineChart, PALETTE } from '../../lib/chart.js';
import { h, section } from '../../lib/dom.js';

export function lossCards() {
  const trainBox = h('div', { testid: 'compare-chart' });
  const valBox = h('div', { testid: 'compare-val-chart' });
  const elements = [
    section(
      'Train loss',
      { testid: 'compare-train-card' },
      h('p', { class: 'muted small' }, 'By global step (stage offset + step), one line per run.'),
      trainBox,
    ),
    section('Validation loss', { testid: 'compare-val-card' }, valBox),
  ];
  /** @type {ReturnType<typeof lineChart> | undefined} */
  let trainChart;
  /** @type {ReturnType<typeof lineChart> | undefined} */
  let valChart;

  /**
   * @param {CompareView} v
   * @param {string[]} names  the runs' labels, in v.runs' order
   */
  const update = (v, names) => {
    /** @param {HistoryRow[]} rows @returns {import('../../lib/chart.js').ChartData} */
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
    } else {
      trainChart.update(trainData);
      valChart?.update(valData);
    }
  };

  const destroy = () => {
    trainChart?.destroy();
    valChart?.destroy();
  };
  return { elements, update, destroy };
}
