// @ts-check
/**
 * The lineage page's "Nodes and edges" card: the graph's nodes and edges as two tables
 * (closed by default), for reading ids and for what the graph cannot show at a glance.
 *
 * @typedef {import('../../lib/api.js').Lineage} Lineage
 */
import { h, pill, replace, shortId } from '../../lib/dom.js';

export function tablesCard() {
  const element = h('div');

  /** @param {Lineage} l */
  const update = (l) =>
    replace(
      element,
      h(
        'details',
        { class: 'card' },
        h('summary', {}, h('h2', { class: 'inline' }, `Nodes and edges (${l.nodes.length} / ${l.edges.length})`)),
        h('div', { class: 'two-columns' }, nodesTable(l), edgesTable(l)),
      ),
    );

  return { element, update };
}

/** @param {Lineage} l */
function nodesTable(l) {
  return h(
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
          h('td', {}, n.runId && n.type !== 'dataset' ? h('a', { href: `#/runs/${n.runId}` }, n.label) : n.label),
          h('td', {}, n.status ? pill(n.status) : ''),
          h('td', {}, shortId(n.id)),
        ),
      ),
    ),
  );
}

/** @param {Lineage} l */
function edgesTable(l) {
  const label = new Map(l.nodes.map((n) => [n.id, `${n.type} ${n.label}`]));
  return h(
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
  );
}
