// @ts-check
/**
 * The run page's two chart cards, loss and learning rate: every stage's points on one x
 * axis (global step = the stage's offset + step) with a dashed line where each stage starts.
 * The uPlot chart is made on the first update and fed new data in place afterwards.
 */
import { alignSeries, lineChart } from '../../lib/chart.js';
import { h, section } from '../../lib/dom.js';

/** @typedef {import('../../lib/api.js').RunMetrics} RunMetrics */

export function lossCard() {
  const box = h('div', { testid: 'loss-chart' });
  const element = section(
    'Loss',
    { testid: 'loss-card' },
    h(
      'p',
      { class: 'muted small' },
      'Train and validation loss of every stage on one axis (global step = stage offset + step); dashed lines mark where each stage starts.',
    ),
    box,
  );
  const chart = stageChart(box, ['trainLoss', 'valLoss'], {
    series: [
      { label: 'train loss', color: '#2563eb' },
      { label: 'val loss', color: '#dc2626', points: true, width: 2 },
    ],
    xLabel: 'step (all stages)',
    yLabel: 'loss',
    height: 300,
  });
  return { element, ...chart };
}

export function lrCard() {
  const box = h('div', { testid: 'lr-chart' });
  const element = section('Learning rate', { testid: 'lr-card' }, box);
  const chart = stageChart(box, ['lr'], {
    series: [{ label: 'learning rate', color: '#059669' }],
    xLabel: 'step (all stages)',
    yLabel: 'lr',
    height: 180,
  });
  return { element, ...chart };
}

/**
 * A chart of some metric keys of every stage, drawn into `box` on the first update.
 * @param {HTMLElement} box
 * @param {string[]} keys  one line per key, in the order of spec.series
 * @param {import('../../lib/chart.js').ChartSpec} spec  without boundaries and xMax (they come from the metrics)
 */
function stageChart(box, keys, spec) {
  /** @type {ReturnType<typeof lineChart> | undefined} */
  let chart;
  return {
    /** @param {RunMetrics} metrics */
    update(metrics) {
      const axis = globalSteps(metrics);
      const data = alignSeries(keys.map(axis.series));
      if (!chart) chart = lineChart(box, { ...spec, boundaries: axis.boundaries, xMax: axis.total }, data);
      else chart.update(data, { boundaries: axis.boundaries, xMax: axis.total });
    },
    destroy() {
      chart?.destroy();
    },
  };
}

/**
 * The stages laid end to end: where each starts, where the last ends, and a key's points
 * as [global step, value].
 * @param {RunMetrics} metrics
 */
function globalSteps(metrics) {
  const offsets = new Map(metrics.stages.map((s) => [s.name, s.offset]));
  return {
    total: metrics.stages.reduce((sum, s) => sum + s.iterations, 0),
    boundaries: metrics.stages.map((s) => ({ x: s.offset, label: s.name })),
    /** @param {string} key */
    series: (key) =>
      Object.entries(metrics.series[key] ?? {}).flatMap(([stage, points]) =>
        points.map(([step, value]) => /** @type {[number, number]} */ ([(offsets.get(stage) ?? 0) + step, value])),
      ),
  };
}
