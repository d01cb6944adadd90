// @ts-check
/**
 * One row of the runs table: its compare checkbox, name (and error), status, current stage,
 * progress, speed, ETA, best validation loss, tags, creation time and, while active, Cancel.
 */
import { duration, h, isActive, num, pill, progressBar, time } from '../../lib/dom.js';

/**
 * @param {import('../../lib/api.js').RunListItem} run
 * @param {{ selected: boolean, onSelect: (checked: boolean) => void, onCancel: () => void }} actions
 */
export function runRow(run, { selected, onSelect, onCancel }) {
  const checkbox = h('input', {
    type: 'checkbox',
    testid: 'run-select',
    'aria-label': `select ${run.name}`,
    checked: selected,
    onchange: (/** @type {Event} */ e) => onSelect(/** @type {HTMLInputElement} */ (e.target).checked),
  });
  const stage = run.stage;
  return h(
    'tr',
    { testid: 'run-row', 'data-run-id': run.id, 'data-status': run.status },
    h('td', {}, checkbox),
    h(
      'td',
      {},
      h('a', { href: `#/runs/${run.id}`, testid: 'run-link' }, run.name),
      run.error ? h('div', { class: 'small error-text', title: run.error }, truncate(run.error, 80)) : null,
    ),
    h('td', {}, pill(run.status, 'run-status')),
    h(
      'td',
      { testid: 'run-stage' },
      stage ? [`${stage.index + 1}. ${stage.name} `, h('span', { class: 'muted small' }, stage.status)] : '—',
    ),
    h(
      'td',
      { class: 'cell-progress' },
      stage ? progressBar(stage.progress, `${stage.step}/${stage.iterations}`, 'run-progress') : '—',
    ),
    h('td', { class: 'num', testid: 'run-tokens' }, num(run.tokensPerSec, 3)),
    h('td', { class: 'num', testid: 'run-eta' }, isActive(run.status) ? duration(run.etaSeconds) : '—'),
    h('td', { class: 'num', testid: 'run-best-val' }, num(run.bestValLoss)),
    h(
      'td',
      { testid: 'run-tags' },
      run.tags.map((t) => h('span', { class: 'tag' }, t)),
    ),
    h('td', { class: 'small' }, time(run.createdAt)),
    h(
      'td',
      {},
      isActive(run.status)
        ? h('button', { type: 'button', class: 'danger small-button', testid: 'run-cancel', onclick: onCancel }, 'Cancel')
        : null,
    ),
  );
}

/**
 * @param {string} text
 * @param {number} n
 */
function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}
