// @ts-check
/**
 * The compare page's "Runs to compare" card: the recent runs (GET /v1/runs) with checkboxes;
 * "Compare" goes to #/compare?runs=<checked>.
 */
import { api } from '../../lib/api.js';
import { h, pill, replace } from '../../lib/dom.js';

/**
 * @param {HTMLElement} box
 * @param {string[]} ids  the runs compared now, checked at first
 * @param {import('../../app.js').PageContext} ctx
 * @param {boolean} collapsed
 */
export async function renderPicker(box, ids, ctx, collapsed) {
  const { runs } = /** @type {{ runs: import('../../lib/api.js').RunListItem[] }} */ (await api('/v1/runs?limit=50'));
  const checked = new Set(ids);
  const go = /** @type {HTMLButtonElement} */ (
    h(
      'button',
      {
        type: 'button',
        class: 'primary',
        testid: 'compare-go',
        onclick: () => ctx.navigate(`#/compare?runs=${[...checked].join(',')}`),
      },
      'Compare',
    )
  );
  const sync = () => {
    go.disabled = checked.size < 2;
  };
  sync();
  const list = h(
    'div',
    { class: 'picker' },
    runs.length
      ? runs.map((r) =>
          h(
            'label',
            { class: 'pick' },
            h('input', {
              type: 'checkbox',
              testid: 'compare-pick',
              'data-run-id': r.id,
              checked: checked.has(r.id),
              onchange: (/** @type {Event} */ e) => {
                if (/** @type {HTMLInputElement} */ (e.target).checked) checked.add(r.id);
                else checked.delete(r.id);
                sync();
              },
            }),
            ` ${r.name} `,
            pill(r.status),
            h('code', { class: 'id' }, r.id.slice(0, 8)),
          ),
        )
      : h('p', { class: 'muted' }, 'No runs yet.'),
  );
  replace(
    box,
    h(
      'details',
      { class: 'card', open: !collapsed },
      h('summary', {}, h('h2', { class: 'inline' }, 'Runs to compare')),
      list,
      h('div', { class: 'row' }, go),
    ),
  );
}
