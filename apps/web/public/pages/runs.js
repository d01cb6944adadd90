// @ts-check
/**
 * #/runs: the live list of runs (GET /v1/runs?status=&tag=), refreshed every 2 s while
 * one of them is queued or running (every 10 s otherwise, to notice new runs), with a
 * cancel button per active run, checkboxes to compare runs, and the "New run" form
 * (POST /v1/runs). Filters live in the hash (#/runs?status=running&tag=demo). The list
 * shows the newest page of 100; "More runs" adds the next page (following the API's
 * nextCursor), and every refresh reads as many pages as are shown. The cards are one module
 * each, in runs/.
 */
import { api, poll, POLL_MS } from '../lib/api.js';
import { h, isActive, replace } from '../lib/dom.js';
import { runsCard } from './runs/list.js';
import { newRunCard } from './runs/new-run.js';

export { EXAMPLE_CURRICULUM } from './runs/new-run.js';

const IDLE_POLL_MS = 10_000;
const PAGE_SIZE = 100;

/** @typedef {import('../lib/api.js').RunListItem} RunRow */

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').PageContext} ctx
 */
export function render(root, ctx) {
  const filters = { status: ctx.query.get('status') ?? '', tag: ctx.query.get('tag') ?? '' };
  /** @type {RunRow[]} */
  let runs = [];
  let lastFetch = 0;
  let forced = true;
  let pages = 1;
  let more = false;

  const refreshNow = () => {
    forced = true;
    poller.kick();
  };
  const list = runsCard(filters, {
    navigate: ctx.navigate,
    refresh: refreshNow,
    more: () => {
      pages++;
      refreshNow();
    },
  });
  const newRun = newRunCard({ refresh: refreshNow });

  const refresh = async () => {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (filters.status) q.set('status', filters.status);
    if (filters.tag) q.set('tag', filters.tag);
    try {
      /** @type {RunRow[]} */
      const read = [];
      let cursor = null;
      for (let page = 0; page < pages; page++) {
        if (cursor) q.set('cursor', cursor);
        const body = /** @type {{ runs: RunRow[], nextCursor: string | null }} */ (await api(`/v1/runs?${q}`));
        read.push(...body.runs);
        cursor = body.nextCursor;
        if (!cursor) break;
      }
      runs = read;
      more = cursor !== null;
      list.showError(null);
    } catch (error) {
      list.showError(error instanceof Error ? error.message : String(error));
      if (root.dataset.state === 'loading') root.dataset.state = 'error';
      throw error;
    }
    list.update(runs, more);
    root.dataset.state = 'ready';
  };

  // The list refreshes every 2 s while a run is active, else every 10 s; the poller ticks
  // every 2 s and an idle tick skips the fetch until 10 s have passed (or something asked
  // for a refresh: a filter, a cancel, a submit, the Refresh button).
  const poller = poll(
    async () => {
      const idle = !runs.some((r) => isActive(r.status));
      if (!forced && idle && Date.now() - lastFetch < IDLE_POLL_MS - 100) return;
      forced = false;
      lastFetch = Date.now();
      await refresh();
    },
    POLL_MS,
    () => true,
  );

  replace(
    root,
    h(
      'div',
      { class: 'page-title' },
      h('h1', {}, 'Runs'),
      h('span', { class: 'muted' }, 'refreshes every 2 s while a run is queued or running'),
    ),
    list.element,
    newRun.element,
  );

  return () => poller.stop();
}
