// @ts-check
/**
 * #/runs: the live list of runs (GET /v1/runs?status=&tag=), refreshed every 2 s while
 * one of them is queued or running (every 10 s otherwise, to notice new runs), with a
 * cancel button per active run, checkboxes to compare runs, and the "New run" form
 * (POST /v1/runs). Filters live in the hash (#/runs?status=running&tag=demo).
 */
import { api, poll, POLL_MS } from '../lib/api.js';
import { duration, h, isActive, notice, num, pill, progressBar, replace, section, time } from '../lib/dom.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const IDLE_POLL_MS = 10_000;

/** The example in the "New run" form: small enough to train in well under a minute. */
export const EXAMPLE_CURRICULUM = {
  name: 'web-example',
  tags: ['web'],
  tokenizer: { name: 'char' },
  model: { kind: 'gpt', layers: 1, heads: 2, dim: 16, blockSize: 16 },
  stages: [
    {
      name: 'tang',
      kind: 'pretrain',
      dataset: { source: 'poetry:tang', limit: 60 },
      iterations: 12,
      batchSize: 4,
      warmup: 2,
      evalEvery: 4,
      checkpointEvery: 4,
    },
    {
      name: 'qa',
      kind: 'sft',
      dataset: { source: 'poetry-qa:tangshi300', limit: 60 },
      iterations: 8,
      batchSize: 4,
      warmup: 2,
      evalEvery: 4,
      checkpointEvery: 4,
    },
  ],
  evaluation: { rougeSamples: 4, maxNewTokens: 16, samples: 2 },
};

/** @typedef {import('../lib/api.js').RunListItem} RunRow */

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').PageContext} ctx
 */
export function render(root, ctx) {
  const filters = { status: ctx.query.get('status') ?? '', tag: ctx.query.get('tag') ?? '' };
  /** @type {Set<string>} */
  const selected = new Set();
  /** @type {RunRow[]} */
  let runs = [];

  // ------------------------------------------------------------------ filters and table
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
    h('input', {
      testid: 'runs-filter-tag',
      type: 'search',
      placeholder: 'tag',
      'aria-label': 'tag',
      value: filters.tag,
    })
  );
  const compareButton = /** @type {HTMLButtonElement} */ (
    h(
      'button',
      {
        type: 'button',
        testid: 'compare-selected',
        disabled: true,
        onclick: () => ctx.navigate(`#/compare?runs=${[...selected].join(',')}`),
      },
      'Compare selected',
    )
  );
  const errorBox = h('div', { testid: 'runs-error' });
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'table', testid: 'runs-table', 'data-count': 0 },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['', 'run', 'status', 'stage', 'progress', 'tokens/s', 'ETA', 'best val loss', 'tags', 'created', ''].map((t) =>
          h('th', {}, t),
        ),
      ),
    ),
    tbody,
  );
  const emptyNote = h('p', { class: 'muted', testid: 'runs-empty', hidden: true }, 'No runs match.');

  const applyFilters = () => {
    filters.status = statusSelect.value;
    filters.tag = tagInput.value.trim();
    const q = new URLSearchParams();
    if (filters.status) q.set('status', filters.status);
    if (filters.tag) q.set('tag', filters.tag);
    // replaceState: no hashchange, so the page (and its checkboxes and form) stays.
    history.replaceState(null, '', `#/runs${q.size ? `?${q}` : ''}`);
    refreshNow();
  };
  statusSelect.addEventListener('change', applyFilters);
  tagInput.addEventListener('change', applyFilters);

  const updateCompareButton = () => {
    compareButton.disabled = selected.size < 2;
    compareButton.textContent = selected.size ? `Compare selected (${selected.size})` : 'Compare selected';
  };

  /** @param {RunRow} run */
  const row = (run) => {
    const checkbox = /** @type {HTMLInputElement} */ (
      h('input', {
        type: 'checkbox',
        testid: 'run-select',
        'aria-label': `select ${run.name}`,
        checked: selected.has(run.id),
        onchange: (/** @type {Event} */ e) => {
          if (/** @type {HTMLInputElement} */ (e.target).checked) selected.add(run.id);
          else selected.delete(run.id);
          updateCompareButton();
        },
      })
    );
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
          ? h(
              'button',
              { type: 'button', class: 'danger small-button', testid: 'run-cancel', onclick: () => void cancel(run) },
              'Cancel',
            )
          : null,
      ),
    );
  };

  /** @param {RunRow} run */
  const cancel = async (run) => {
    // Cancelling cannot be undone (the checkpoints stay): ask first.
    if (!window.confirm(`Cancel run ${run.name}? Its running stage stops at its next iteration; its checkpoints stay.`))
      return;
    try {
      await api(`/v1/runs/${run.id}/cancel`, { method: 'POST' });
      replace(errorBox);
    } catch (error) {
      replace(errorBox, notice('error', `Cancel ${run.name}: ${message(error)}`));
    }
    refreshNow();
  };

  const refresh = async () => {
    const q = new URLSearchParams({ limit: '100' });
    if (filters.status) q.set('status', filters.status);
    if (filters.tag) q.set('tag', filters.tag);
    try {
      runs = (await api(`/v1/runs?${q}`)).runs;
      replace(errorBox);
    } catch (error) {
      replace(errorBox, notice('error', message(error)));
      if (root.dataset.state === 'loading') root.dataset.state = 'error';
      throw error;
    }
    // Selections of runs no longer listed stay selected (a filter may hide them for a moment).
    replace(tbody, runs.map(row));
    table.dataset.count = String(runs.length);
    emptyNote.hidden = runs.length > 0;
    root.dataset.state = 'ready';
  };

  // The list refreshes every 2 s while a run is active, else every 10 s; the poller ticks
  // every 2 s and an idle tick skips the fetch until 10 s have passed (or something asked
  // for a refresh: a filter, a cancel, a submit, the Refresh button).
  let lastFetch = 0;
  let forced = true;
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
  const refreshNow = () => {
    forced = true;
    poller.kick();
  };

  // ------------------------------------------------------------------ new run form
  const textarea = /** @type {HTMLTextAreaElement} */ (
    h('textarea', { testid: 'new-run-json', rows: 18, spellcheck: 'false', 'aria-label': 'curriculum JSON' })
  );
  textarea.value = JSON.stringify(EXAMPLE_CURRICULUM, null, 2);
  const submitButton = /** @type {HTMLButtonElement} */ (
    h('button', { type: 'submit', testid: 'new-run-submit', class: 'primary' }, 'Submit')
  );
  const formError = h('div', { testid: 'new-run-error' });
  const formResult = h('div', { testid: 'new-run-result' });
  const form = h(
    'form',
    {
      testid: 'new-run-form',
      class: 'new-run',
      onsubmit: (/** @type {Event} */ e) => {
        e.preventDefault();
        void submit();
      },
    },
    h(
      'p',
      { class: 'muted small' },
      'A curriculum as JSON (the same fields as a YAML curriculum; see POST /v1/runs in the API docs). The example trains in seconds.',
    ),
    textarea,
    h(
      'div',
      { class: 'row' },
      submitButton,
      h(
        'button',
        {
          type: 'button',
          testid: 'new-run-reset',
          onclick: () => (textarea.value = JSON.stringify(EXAMPLE_CURRICULUM, null, 2)),
        },
        'Reset to the example',
      ),
    ),
    formError,
    formResult,
  );

  const submit = async () => {
    submitButton.disabled = true;
    replace(formError);
    replace(formResult);
    try {
      // The text goes to the API as it is: its message names the field (or the JSON error).
      /** @type {import('../lib/api.js').SubmittedRunView} */
      const created = await api('/v1/runs', { method: 'POST', body: textarea.value });
      replace(
        formResult,
        h(
          'div',
          { class: 'notice notice-ok' },
          'Submitted ',
          h('a', { href: `#/runs/${created.id}`, testid: 'new-run-link' }, created.name),
          ` (${created.stages.length} stages).`,
        ),
      );
      refreshNow();
    } catch (error) {
      replace(formError, notice('error', message(error)));
    } finally {
      submitButton.disabled = false;
    }
  };

  replace(
    root,
    h(
      'div',
      { class: 'page-title' },
      h('h1', {}, 'Runs'),
      h('span', { class: 'muted' }, 'refreshes every 2 s while a run is queued or running'),
    ),
    section(
      'All runs',
      { testid: 'runs-card' },
      h(
        'div',
        { class: 'toolbar' },
        statusSelect,
        tagInput,
        h('button', { type: 'button', testid: 'runs-refresh', onclick: () => refreshNow() }, 'Refresh'),
        h('span', { class: 'spacer' }),
        compareButton,
      ),
      errorBox,
      h('div', { class: 'table-wrap' }, table),
      emptyNote,
    ),
    h('details', { class: 'card', open: true }, h('summary', {}, h('h2', { class: 'inline' }, 'New run')), form),
  );

  return () => poller.stop();
}

/** @param {unknown} error */
function message(error) {
  return error instanceof Error ? error.message : String(error);
}

/**
 * @param {string} text
 * @param {number} n
 */
function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}
