// @ts-check
/**
 * Line charts with uPlot (/vendor/uPlot.esm.js). Stage boundaries are drawn by a small
 * plugin on uPlot's `draw` hook: a dashed vertical line at each stage's first global step
 * with the stage's name. The chart follows its container's width (ResizeObserver).
 *
 * The container keeps a few facts as data attributes for tests that cannot read a canvas:
 * data-points (x values), data-series (lines), data-boundaries (lines between stages).
 */
// Served by the API from node_modules/uplot; apps/web/tsconfig.json maps this URL to uplot's own types.
import uPlot from '/vendor/uPlot.esm.js';

/** Colors for series and runs, readable on white. */
export const PALETTE = [
  '#2563eb',
  '#dc2626',
  '#059669',
  '#d97706',
  '#7c3aed',
  '#db2777',
  '#0891b2',
  '#65a30d',
  '#475569',
  '#ea580c',
];

/**
 * @typedef {{ label: string, color?: string, dash?: number[], points?: boolean, width?: number }} SeriesSpec
 * @typedef {{ x: number, label: string }} Boundary
 * @typedef {{
 *   series: SeriesSpec[],
 *   xLabel?: string,
 *   yLabel?: string,
 *   height?: number,
 *   xMax?: number,
 *   boundaries?: Boundary[],
 *   log?: boolean,
 * }} ChartSpec
 * @typedef {[xs: number[], ...ys: (number | null)[][]]} ChartData
 */

/**
 * The plugin that marks stage boundaries.
 * @param {() => Boundary[]} boundaries
 */
function boundaryPlugin(boundaries) {
  return {
    hooks: {
      /** @param {uPlot} u */
      draw: (u) => {
        const ctx = /** @type {CanvasRenderingContext2D} */ (u.ctx);
        const { left, top, width, height } = u.bbox;
        const ratio = window.devicePixelRatio || 1;
        ctx.save();
        ctx.font = `${Math.round(11 * ratio)}px system-ui, sans-serif`;
        ctx.textBaseline = 'top';
        for (const b of boundaries()) {
          const x = Math.round(u.valToPos(b.x, 'x', true));
          if (x < left - 1 || x > left + width + 1) continue;
          ctx.strokeStyle = 'rgba(71, 85, 105, 0.7)';
          ctx.lineWidth = ratio;
          ctx.setLineDash([4 * ratio, 4 * ratio]);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.fillStyle = 'rgba(51, 65, 85, 0.9)';
          ctx.fillText(b.label, x + 4 * ratio, top + 4 * ratio);
        }
        ctx.restore();
      },
    },
  };
}

/**
 * Draws a line chart into `container` (emptied first).
 * @param {HTMLElement} container
 * @param {ChartSpec} spec
 * @param {ChartData} data
 */
export function lineChart(container, spec, data) {
  container.replaceChildren();
  container.classList.add('chart');
  let boundaries = spec.boundaries ?? [];
  let xMax = spec.xMax ?? 0;
  const height = spec.height ?? 260;
  const empty = document.createElement('div');
  empty.className = 'chart-empty';
  empty.textContent = 'no points yet';
  /** @type {uPlot.Options} */
  const opts = {
    width: Math.max(200, container.clientWidth || 600),
    height,
    scales: {
      x: {
        time: false,
        /** @type {(u: any, min: number, max: number) => [number, number]} */
        range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, xMax, 1)],
      },
      y: spec.log ? { distr: 3 } : {},
    },
    series: [
      { label: spec.xLabel ?? 'step' },
      ...spec.series.map((s, i) => ({
        label: s.label,
        stroke: s.color ?? PALETTE[i % PALETTE.length],
        width: s.width ?? 1.5,
        dash: s.dash,
        spanGaps: true,
        points: { show: s.points ?? false, size: 5 },
        /** @type {(u: any, v: number | null) => string} */
        value: (_u, v) => (v === null || v === undefined ? '—' : Number(v.toPrecision(4)).toString()),
      })),
    ],
    axes: [
      { label: spec.xLabel ?? 'step' },
      {
        label: spec.yLabel ?? '',
        size: 64,
        values: (/** @type {any} */ _u, /** @type {number[]} */ splits) => splits.map(tick),
      },
    ],
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
    plugins: [boundaryPlugin(() => boundaries)],
  };
  const plot = new uPlot(opts, data, container);
  container.appendChild(empty);
  const describe = (/** @type {ChartData} */ d) => {
    container.dataset.points = String(d[0]?.length ?? 0);
    container.dataset.series = String(spec.series.length);
    // Lines between stages: the first stage starts at x = 0, on the axis (its name is drawn there).
    container.dataset.boundaries = String(boundaries.filter((b) => b.x > 0).length);
    empty.hidden = (d[0]?.length ?? 0) > 0;
  };
  describe(data);
  const observer = new ResizeObserver(() => {
    const width = container.clientWidth;
    if (width > 0 && Math.abs(width - plot.width) > 2) plot.setSize({ width, height });
  });
  observer.observe(container);
  return {
    /**
     * New data (same series); optionally new boundaries and x extent.
     * @param {ChartData} next
     * @param {{ boundaries?: Boundary[], xMax?: number }} [more]
     */
    update(next, more = {}) {
      if (more.boundaries) boundaries = more.boundaries;
      if (more.xMax !== undefined) xMax = more.xMax;
      plot.setData(next);
      describe(next);
    },
    destroy() {
      observer.disconnect();
      plot.destroy();
    },
  };
}

/**
 * A y-axis label with as many digits as it needs (uPlot's default rounds 0.0005 to 0.001).
 * @param {number | null} v
 */
function tick(v) {
  if (v === null || v === undefined) return '';
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(1);
  return Number(v.toPrecision(4)).toString();
}

/**
 * Merges several [x, y] series onto one sorted x axis, null where a series has no point.
 * @param {[number, number][][]} series
 * @returns {ChartData}
 */
export function alignSeries(series) {
  const xs = [...new Set(series.flatMap((s) => s.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    /** @type {(number | null)[]} */
    const column = new Array(xs.length).fill(null);
    for (const [x, y] of s) column[/** @type {number} */ (index.get(x))] = y;
    return column;
  });
  return [xs, ...ys];
}
