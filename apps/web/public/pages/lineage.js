// @ts-check
/**
 * #/lineage/<id>: datasets → stages → checkpoints across runs (GET /v1/runs/:id/lineage),
 * drawn with cytoscape (/vendor/cytoscape.esm.min.js) in a directed breadthfirst layout:
 * a variant trained from another run's checkpoint shows as a branch from that checkpoint.
 * Stages and checkpoints take the color of their run; the nodes and edges are also listed
 * as tables. Refreshed every 2 s while one of the runs in the graph is queued or running
 * (the graph is laid out again only when it changed).
 */
import { api, poll, POLL_MS } from '../lib/api.js';
import { PALETTE } from '../lib/chart.js';
import { h, isActive, notice, pill, replace, section, shortId } from '../lib/dom.js';

/** @typedef {import('../lib/api.js').Lineage} Lineage */

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').PageContext} ctx
 */
export function render(root, ctx) {
  const id = ctx.path[1] ?? '';
  const graphBox = h('div', { class: 'graph', testid: 'lineage-graph' });
  const legend = h('div', { class: 'legend', testid: 'lineage-legend' });
  const tables = h('div');
  const pageError = h('div');
  const truncated = notice('info', 'The graph is large: the API cut it short.', 'lineage-truncated');
  truncated.hidden = true;
  replace(
    root,
    h(
      'div',
      { class: 'page-title' },
      h('h1', {}, 'Lineage'),
      h('a', { href: `#/runs/${id}`, class: 'button', testid: 'lineage-back' }, 'Back to the run'),
    ),
    pageError,
    section(
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
    ),
    tables,
  );

  /** @type {import('/vendor/cytoscape.esm.min.js').Core | undefined} */
  let cy;
  /** @type {Lineage | undefined} */
  let lineage;
  let shown = '';
  let gone = false;
  /** @type {Promise<{ default: typeof import('/vendor/cytoscape.esm.min.js') }> | undefined} */
  let cytoscapeModule;

  const tick = async () => {
    try {
      lineage = /** @type {Lineage} */ (await api(`/v1/runs/${encodeURIComponent(id)}/lineage`));
    } catch (error) {
      replace(pageError, notice('error', error instanceof Error ? error.message : String(error), 'page-error'));
      if (!lineage) root.dataset.state = 'error';
      if (/** @type {any} */ (error).status === 404) gone = true;
      throw error;
    }
    replace(pageError);
    const signature = JSON.stringify([lineage.nodes.map((n) => [n.id, n.status]), lineage.edges]);
    if (signature !== shown) {
      shown = signature;
      truncated.hidden = !lineage.truncated;
      const colors = runColors(lineage);
      renderLegend(lineage, colors);
      renderTables(lineage);
      // Loaded on this page only (440 kB); served by the API from node_modules/cytoscape
      // (apps/web/tsconfig.json maps this URL to cytoscape's own types).
      cytoscapeModule ??= import('/vendor/cytoscape.esm.min.js');
      const cytoscape = (await cytoscapeModule).default;
      drawGraph(cytoscape, lineage, colors);
    }
    root.dataset.state = 'ready';
  };

  /** @param {Lineage} l */
  const runColors = (l) => {
    const runs = l.nodes.filter((n) => n.type === 'run');
    // The page's own run first, so it keeps the first color.
    runs.sort((a, b) => (a.id === l.runId ? -1 : b.id === l.runId ? 1 : a.label.localeCompare(b.label)));
    return new Map(runs.map((r, i) => [r.id, PALETTE[i % PALETTE.length]]));
  };

  /**
   * @param {Lineage} l
   * @param {Map<string, string>} colors
   */
  const renderLegend = (l, colors) => {
    replace(
      legend,
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
    );
  };

  /**
   * @param {typeof import('/vendor/cytoscape.esm.min.js')} cytoscape
   * @param {Lineage} l
   * @param {Map<string, string>} colors
   */
  const drawGraph = (cytoscape, l, colors) => {
    cy?.destroy();
    const nodes = l.nodes.filter((n) => n.type !== 'run');
    const ids = new Set(nodes.map((n) => n.id));
    const edges = l.edges.filter((e) => ids.has(e.from) && ids.has(e.to));
    graphBox.dataset.nodes = String(nodes.length);
    graphBox.dataset.edges = String(edges.length);
    cy = cytoscape({
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
      style: [
        {
          selector: 'node',
          style: {
            label: 'data(label)',
            'font-size': 10,
            'text-wrap': 'wrap',
            'text-max-width': '140px',
            'text-valign': 'bottom',
            'text-margin-y': 4,
            color: '#0f172a',
            'background-color': 'data(color)',
            'border-width': 0,
          },
        },
        {
          selector: 'node.dataset',
          style: { shape: 'round-rectangle', width: 26, height: 18, 'background-color': '#94a3b8' },
        },
        { selector: 'node.stage', style: { shape: 'round-rectangle', width: 34, height: 22 } },
        {
          selector: 'node.checkpoint',
          style: { shape: 'ellipse', width: 12, height: 12, 'font-size': 8, 'background-opacity': 0.75 },
        },
        { selector: 'node[own = 1]', style: { 'border-width': 2, 'border-color': '#0f172a' } },
        {
          selector: 'edge',
          style: {
            width: 1.5,
            'curve-style': 'bezier',
            'target-arrow-shape': 'triangle',
            'arrow-scale': 0.8,
            'line-color': '#cbd5e1',
            'target-arrow-color': '#cbd5e1',
          },
        },
        { selector: 'edge.parent', style: { width: 2.5, 'line-color': '#0f172a', 'target-arrow-color': '#0f172a' } },
        {
          selector: 'edge.trained-on',
          style: { 'line-style': 'dashed', 'line-color': '#94a3b8', 'target-arrow-color': '#94a3b8' },
        },
      ],
      layout: { name: 'breadthfirst', directed: true, spacingFactor: 1.1, padding: 20, avoidOverlap: true },
      minZoom: 0.2,
      maxZoom: 3,
    });
    cy.on('tap', 'node', (event) => {
      const runId = event.target.data('runId');
      if (runId) ctx.navigate(`#/runs/${runId}`);
    });
  };

  /** @param {Lineage} l */
  const renderTables = (l) => {
    const label = new Map(l.nodes.map((n) => [n.id, `${n.type} ${n.label}`]));
    replace(
      tables,
      h(
        'details',
        { class: 'card' },
        h('summary', {}, h('h2', { class: 'inline' }, `Nodes and edges (${l.nodes.length} / ${l.edges.length})`)),
        h(
          'div',
          { class: 'two-columns' },
          h(
            'table',
            { class: 'table compact', testid: 'lineage-nodes' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['type', 'label', 'status', 'id'].map((t) => h('th', {}, t)),
              ),
            ),
            h(
              'tbody',
              {},
              l.nodes.map((n) =>
                h(
                  'tr',
                  { testid: 'lineage-node', 'data-node-id': n.id, 'data-type': n.type },
                  h('td', {}, n.type),
                  h(
                    'td',
                    {},
                    n.runId && n.type !== 'dataset' ? h('a', { href: `#/runs/${n.runId}` }, n.label) : n.label,
                  ),
                  h('td', {}, n.status ? pill(n.status) : ''),
                  h('td', {}, shortId(n.id)),
                ),
              ),
            ),
          ),
          h(
            'table',
            { class: 'table compact', testid: 'lineage-edges' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['from', 'edge', 'to'].map((t) => h('th', {}, t)),
              ),
            ),
            h(
              'tbody',
              {},
              l.edges.map((e) =>
                h(
                  'tr',
                  { testid: 'lineage-edge', 'data-from': e.from, 'data-to': e.to, 'data-type': e.type },
                  h('td', {}, label.get(e.from) ?? e.from),
                  h('td', { class: 'muted' }, e.type),
                  h('td', {}, label.get(e.to) ?? e.to),
                ),
              ),
            ),
          ),
        ),
      ),
    );
  };

  const poller = poll(
    tick,
    POLL_MS,
    () => !gone && (!lineage || lineage.nodes.some((n) => n.type === 'run' && isActive(n.status ?? ''))),
  );
  return () => {
    poller.stop();
    cy?.destroy();
  };
}
