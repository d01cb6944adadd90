// @ts-check
/**
 * The lineage page's graph card: the legend of runs (one color each), the "cut short" note and
 * the cytoscape graph of datasets, stages and checkpoints; a tap on a node opens its run.
 *
 * @typedef {import('../../lib/api.js').Lineage} Lineage
 */
import { PALETTE } from '../../lib/chart.js';
import { h, notice, pill, replace, section } from '../../lib/dom.js';
import { GRAPH_STYLE } from './graph-style.js';

/** @param {{ navigate: (hash: string) => void }} actions */
export function graphCard({ navigate }) {
  const graphBox = h('div', { class: 'graph', testid: 'lineage-graph' });
  const legend = h('div', { class: 'legend', testid: 'lineage-legend' });
  const truncated = notice('info', 'The graph is large: the API cut it short.', 'lineage-truncated');
  truncated.hidden = true;
  const element = section(
    'Datasets → stages → checkpoints',
    { testid: 'lineage-card' },
    h(
      'p',
      { class: 'muted small' },
      'Arrows point from what a stage was trained on (its dataset and its parent checkpoint) to the stage, and from a stage to the checkpoints it wrote. Click a stage or checkpoint to open its run.',
    ),
    legend,
    truncated,
    graphBox,
  );

  /** @type {import('/vendor/cytoscape.esm.min.js').Core | undefined} */
  let cy;
  /** @type {Promise<{ default: typeof import('/vendor/cytoscape.esm.min.js') }> | undefined} */
  let cytoscapeModule;

  /** @param {Lineage} l */
  const update = async (l) => {
    truncated.hidden = !l.truncated;
    const colors = runColors(l);
    replace(legend, ...legendItems(l, colors));
    // Loaded on this page only (440 kB); served by the API from node_modules/cytoscape
    // (apps/web/tsconfig.json maps this URL to cytoscape's own types).
    cytoscapeModule ??= import('/vendor/cytoscape.esm.min.js');
    const cytoscape = (await cytoscapeModule).default;
    cy?.destroy();
    cy = drawGraph(cytoscape, graphBox, l, colors);
    cy.on('tap', 'node', (event) => {
      const runId = event.target.data('runId');
      if (runId) navigate(`#/runs/${runId}`);
    });
  };

  return { element, update, destroy: () => cy?.destroy() };
}

/** @param {Lineage} l */
function runColors(l) {
  const runs = l.nodes.filter((n) => n.type === 'run');
  // The page's own run first, so it keeps the first color.
  runs.sort((a, b) => (a.id === l.runId ? -1 : b.id === l.runId ? 1 : a.label.localeCompare(b.label)));
  return new Map(runs.map((r, i) => [r.id, PALETTE[i % PALETTE.length]]));
}

/**
 * @param {Lineage} l
 * @param {Map<string, string>} colors
 */
function legendItems(l, colors) {
  return [
    l.nodes
      .filter((n) => n.type === 'run')
      .map((r) =>
        h(
          'span',
          { class: 'legend-item' },
          h('span', { class: 'swatch', style: `background: ${colors.get(r.id)}` }),
          h('a', { href: `#/runs/${r.id}`, testid: 'lineage-run-link', 'data-run-id': r.id }, r.label),
          r.status ? pill(r.status) : null,
          r.id === l.runId ? h('span', { class: 'muted small' }, '(this run)') : null,
        ),
      ),
    h('span', { class: 'legend-item muted small' }, h('span', { class: 'swatch dataset' }), 'dataset'),
  ];
}

/**
 * @param {typeof import('/vendor/cytoscape.esm.min.js')} cytoscape
 * @param {HTMLElement} graphBox
 * @param {Lineage} l
 * @param {Map<string, string>} colors
 */
function drawGraph(cytoscape, graphBox, l, colors) {
  const nodes = l.nodes.filter((n) => n.type !== 'run');
  const ids = new Set(nodes.map((n) => n.id));
  const edges = l.edges.filter((e) => ids.has(e.from) && ids.has(e.to));
  graphBox.dataset.nodes = String(nodes.length);
  graphBox.dataset.edges = String(edges.length);
  return cytoscape({
    container: graphBox,
    elements: [
      ...nodes.map((n) => ({
        data: {
          id: n.id,
          label: n.type === 'stage' ? `${n.label}\n${n.kind ?? ''} · ${n.status ?? ''}` : n.label,
          type: n.type,
          runId: n.runId ?? '',
          color: n.runId ? (colors.get(n.runId) ?? '#64748b') : '#64748b',
          own: n.runId === l.runId ? 1 : 0,
        },
        classes: n.type,
      })),
      ...edges.map((e, i) => ({
        data: { id: `e${i}`, source: e.from, target: e.to, type: e.type },
        classes: e.type,
      })),
    ],
    style: GRAPH_STYLE,
    layout: { name: 'breadthfirst', directed: true, spacingFactor: 1.1, padding: 20, avoidOverlap: true },
    minZoom: 0.2,
    maxZoom: 3,
  });
}
