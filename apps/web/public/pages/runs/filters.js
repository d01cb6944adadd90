// @ts-check
/**
 * The runs list's status and tag filters. A change is written to the hash with
 * history.replaceState (no hashchange, so the page, its checkboxes and its form stay).
 */
import { h } from '../../lib/dom.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/**
 * @param {{ status: string, tag: string }} filters  what the list asks for; a change updates it
 * @param {() => void} refresh  fetches the list now
 */
export function filterControls(filters, refresh) {
  const statusSelect = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { testid: 'runs-filter-status', 'aria-label': 'status' },
      h('option', { value: '' }, 'all statuses'),
      STATUSES.map((s) => h('option', { value: s }, s)),
    )
  );
  statusSelect.value = filters.status;
  const tagInput = /** @type {HTMLInputElement} */ (
    h('input', { testid: 'runs-filter-tag', type: 'search', placeholder: 'tag', 'aria-label': 'tag', value: filters.tag })
  );

  const applyFilters = () => {
    filters.status = statusSelect.value;
    filters.tag = tagInput.value.trim();
    const q = new URLSearchParams();
    if (filters.status) q.set('status', filters.status);
    if (filters.tag) q.set('tag', filters.tag);
    history.replaceState(null, '', `#/runs${q.size ? `?${q}` : ''}`);
    refresh();
  };
  statusSelect.addEventListener('change', applyFilters);
  tagInput.addEventListener('change', applyFilters);
  return [statusSelect, tagInput];
}
