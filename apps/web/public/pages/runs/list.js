// @ts-check
/**
 * The runs page's "All runs" card: the status and tag filters (kept in the hash), Refresh,
 * "Compare selected" with the rows' checkboxes, the table of runs, and "More runs" while the
 * API has more pages.
 */
import { api } from '../../lib/api.js';
import { h, notice, replace, section } from '../../lib/dom.js';
import { filterControls } from './filters.js';
import { runRow } from './row.js';

/**
 * @param {{ status: string, tag: string }} filters  what the list asks for; its filters change it
 * @param {{ navigate: (hash: string) => void, refresh: () => void, more: () => void }} actions  refresh: fetch
 *   the list now; more: show the next page too
 */
export function runsCard(filters, { navigate, refresh, more }) {
  /** @type {Set<string>} */
  const selected = new Set();

  const compareButton = /** @type {HTMLButtonElement} */ (
    h(
      'button',
      {
        type: 'button',
        testid: 'compare-selected',
        disabled: true,
        onclick: () => navigate(`#/compare?runs=${[...selected].join(',')}`),
      },
      'Compare selected',
    )
  );
  const errorBox = h('div', { testid: 'runs-error' });
  const tbody = h('tbody');
  const headings = ['', 'run', 'status', 'stage', 'progress', 'tokens/s', 'ETA', 'best val loss', 'tags', 'created', ''];
  const table = h(
    'table',
    { class: 'table', testid: 'runs-table', 'data-count': 0 },
    h('thead', {}, h('tr', {}, headings.map((t) => h('th', {}, t)))),
    tbody,
  );
  const emptyNote = h('p', { class: 'muted', testid: 'runs-empty', hidden: true }, 'No runs match.');
  const moreButton = h('button', { type: 'button', testid: 'runs-more', hidden: true, onclick: () => more() }, 'More runs');

  const updateCompareButton = () => {
    compareButton.disabled = selected.size < 2;
    compareButton.textContent = selected.size ? `Compare selected (${selected.size})` : 'Compare selected';
  };

  /** @param {import('../../lib/api.js').RunListItem} run */
  const cancel = async (run) => {
    // Cancelling cannot be undone (the checkpoints stay): ask first.
    if (!window.confirm(`Cancel run ${run.name}? Its running stage stops at its next iteration; its checkpoints stay.`))
      return;
    try {
      await api(`/v1/runs/${run.id}/cancel`, { method: 'POST' });
      replace(errorBox);
    } catch (error) {
      replace(errorBox, notice('error', `Cancel ${run.name}: ${error instanceof Error ? error.message : String(error)}`));
    }
    refresh();
  };

  /**
   * @param {import('../../lib/api.js').RunListItem[]} runs
   * @param {boolean} hasMore  the API has another page
   */
  const update = (runs, hasMore) => {
    // Selections of runs no longer listed stay selected (a filter may hide them for a moment).
    const rows = runs.map((run) =>
      runRow(run, {
        selected: selected.has(run.id),
        onSelect: (checked) => {
          if (checked) selected.add(run.id);
          else selected.delete(run.id);
          updateCompareButton();
        },
        onCancel: () => void cancel(run),
      }),
    );
    replace(tbody, rows);
    table.dataset.count = String(runs.length);
    emptyNote.hidden = runs.length > 0;
    moreButton.hidden = !hasMore;
  };

  const element = section(
    'All runs',
    { testid: 'runs-card' },
    h(
      'div',
      { class: 'toolbar' },
      ...filterControls(filters, refresh),
      h('button', { type: 'button', testid: 'runs-refresh', onclick: () => refresh() }, 'Refresh'),
      h('span', { class: 'spacer' }),
      compareButton,
    ),
    errorBox,
    h('div', { class: 'table-wrap' }, table),
    emptyNote,
    moreButton,
  );
  /** @param {string | null} text  null clears the error */
  const showError = (text) => (text === null ? replace(errorBox) : replace(errorBox, notice('error', text)));
  return { element, update, showError };
}
