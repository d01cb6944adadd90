// @ts-check
/**
 * #/lineage/<id>: datasets → stages → checkpoints across runs (GET /v1/runs/:id/lineage),
 * drawn with cytoscape (/vendor/cytoscape.esm.min.js) in a directed breadthfirst layout:
 * a variant trained from another run's checkpoint shows as a branch from that checkpoint.
 * Stages and checkpoints take the color of their run; the nodes and edges are also listed
 * as tables. Refreshed every 2 s while one of the runs in the graph is queued or running
 * (the graph is laid out again only when it changed). The cards are one module each, in
 * lineage/.
 */
import { api, poll, POLL_MS } from '../lib/api.js';
import { h, isActive, notice, replace } from '../lib/dom.js';
import { graphCard } from './lineage/graph.js';
import { tablesCard } from './lineage/tables.js';

/** @typedef {import('../lib/api.js').Lineage} Lineage */

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').PageContext} ctx
 */
export function render(root, ctx) {
  const id = ctx.path[1] ?? '';
  const pageError = h('div');
  const graph = graphCard({ navigate: ctx.navigate });
  const tables = tablesCard();
  replace(
    root,
    h(
      'div',
      { class: 'page-title' },
      h('h1', {}, 'Lineage'),
      h('a', { href: `#/runs/${id}`, class: 'button', testid: 'lineage-back' }, 'Back to the run'),
    ),
    pageError,
    graph.element,
    tables.element,
  );

  /** @type {Lineage | undefined} */
  let lineage;
  let shown = '';
  let gone = false;

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
      // The tables first: the graph waits for cytoscape to load.
      tables.update(lineage);
      await graph.update(lineage);
    }
    root.dataset.state = 'ready';
  };

  const poller = poll(
    tick,
    POLL_MS,
    () => !gone && (!lineage || lineage.nodes.some((n) => n.type === 'run' && isActive(n.status ?? ''))),
  );
  return () => {
    poller.stop();
    graph.destroy();
  };
}
