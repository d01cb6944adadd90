// @ts-check
/**
 * The compare page's "Settings that differ" card: the curriculum fields whose values differ
 * between the runs (differences[]), one column per run.
 *
 * @typedef {import('../../lib/api.js').CompareView} CompareView
 */
import { h, replace, section } from '../../lib/dom.js';

export function differencesCard() {
  const diffBox = h('div');
  const element = section('Settings that differ', { testid: 'compare-differences-card' }, diffBox);

  /**
   * @param {CompareView} v
   * @param {string[]} names  the runs' labels, in v.runs' order
   */
  const update = (v, names) =>
    replace(
      diffBox,
      v.differences.length
        ? h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              { class: 'table compact', testid: 'compare-differences' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  h('th', {}, 'field'),
                  names.map((n) => h('th', {}, n)),
                ),
              ),
              h(
                'tbody',
                {},
                v.differences.map((d) =>
                  h(
                    'tr',
                    { testid: 'difference-row', 'data-path': d.path },
                    h('td', {}, h('code', {}, d.path)),
                    v.runs.map((r) => {
                      const value = d.values[r.id];
                      return h(
                        'td',
                        { class: value === null || value === undefined ? 'diff absent' : 'diff' },
                        value === null || value === undefined ? '—' : show(value),
                      );
                    }),
                  ),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted', testid: 'compare-no-differences' }, 'The curricula are the same.'),
    );

  return { element, update };
}

/** @param {unknown} value */
function show(value) {
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
