// @ts-check
/**
 * The run page's events card: the stage event log (starts, checkpoints, retries, resumes,
 * the workers that took each attempt) in time order.
 */
import { h, replace, section, time } from '../../lib/dom.js';

export function eventsCard() {
  const box = h('div');
  const element = section('Events', { testid: 'events-card' }, box);

  /** @param {import('../../lib/api.js').RunEvent[]} events */
  const update = (events) => {
    if (!events.length) {
      replace(box, h('p', { class: 'muted', testid: 'events-empty' }, 'No events yet.'));
      return;
    }
    replace(box, h('div', { class: 'table-wrap' }, eventsTable(events)));
  };

  return { element, update };
}

/** @param {import('../../lib/api.js').RunEvent[]} events */
function eventsTable(events) {
  return h(
    'table',
    { class: 'table compact', testid: 'events-table', 'data-count': events.length },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['time', 'stage', 'event', 'step', 'worker', 'message'].map((t) => h('th', {}, t)),
      ),
    ),
    h(
      'tbody',
      {},
      events.map((e) =>
        h(
          'tr',
          { testid: 'event-row', 'data-type': e.type, class: `event-${e.type}` },
          h('td', { class: 'small' }, time(e.at)),
          h('td', {}, `${e.stageIndex + 1}. ${e.stage}`),
          h('td', {}, h('span', { class: `pill pill-event pill-${e.type}` }, e.type)),
          h('td', { class: 'num' }, e.step ?? '—'),
          h('td', { class: 'small' }, e.workerId ?? '—'),
          h('td', { class: 'small' }, e.message ?? ''),
        ),
      ),
    ),
  );
}
