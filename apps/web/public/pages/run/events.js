// @ts-check
/**
 * The run page's events card: the stage event log (starts, checkpoints, retries, resumes,
 * the workers that took each attempt) in time order: the API's first page of them (500), and
 * where there are more, a link to the next page.
 */
import { api } from '../../lib/api.js';
import { h, replace, section, time } from '../../lib/dom.js';

/**
 * Opens a page of the API's JSON in a new tab. Fetched with the tab's key (a plain link would
 * be a 401 once keys exist); the tab is opened at the click, so no popup blocker stops it.
 * @param {string} path
 */
function openJson(path) {
  const tab = window.open('about:blank', '_blank');
  api(path).then(
    (body) => {
      const blob = new Blob([JSON.stringify(body, null, 2)], { type: 'application/json' });
      if (tab) tab.location.href = URL.createObjectURL(blob);
    },
    (error) => {
      if (tab) tab.document.body.textContent = error instanceof Error ? error.message : String(error);
    },
  );
}

/** @param {string} runId */
export function eventsCard(runId) {
  const box = h('div');
  const element = section('Events', { testid: 'events-card' }, box);

  /**
   * @param {import('../../lib/api.js').RunEvent[]} events
   * @param {string | null} nextCursor  the API's cursor of the next page, null when these are all
   */
  const update = (events, nextCursor) => {
    if (!events.length) {
      replace(box, h('p', { class: 'muted', testid: 'events-empty' }, 'No events yet.'));
      return;
    }
    const next = `/v1/runs/${encodeURIComponent(runId)}/events?cursor=${encodeURIComponent(nextCursor ?? '')}`;
    replace(
      box,
      h('div', { class: 'table-wrap' }, eventsTable(events)),
      nextCursor
        ? h(
            'p',
            { class: 'muted small', testid: 'events-more' },
            `The first ${events.length} events. `,
            h('button', { type: 'button', class: 'link', onclick: () => openJson(next) }, 'The next ones (JSON)'),
          )
        : null,
    );
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
