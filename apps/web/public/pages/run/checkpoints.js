// @ts-check
/**
 * The run page's checkpoints card: every checkpoint of every stage with its aliases, a
 * download link and a link to the playground, and a form that names a checkpoint (PUT
 * /v1/aliases/:name). The form is built once so that what is typed survives the refreshes;
 * the table is redrawn only when the checkpoints or aliases change.
 *
 * @typedef {import('../../lib/api.js').RunView} RunView
 * @typedef {RunView['stages'][number]['checkpoints'][number] & { stage: import('../../lib/api.js').StageView }} CheckpointRow
 */
import { api, download } from '../../lib/api.js';
import { h, notice, replace, section, shortId, time } from '../../lib/dom.js';

/** @param {{ refresh: () => void }} page */
export function checkpointsCard({ refresh }) {
  const tableBox = h('div');
  // What the last download did: its file, or why it failed (a 401, a download cut short).
  const downloaded = h('div', { testid: 'checkpoint-download-result' });
  /** @param {CheckpointRow} c */
  const save = async (c) => {
    replace(downloaded, h('p', { class: 'muted' }, `downloading ${c.stage.name} @ ${c.step}…`));
    try {
      const file = await download(`/v1/checkpoints/${c.id}/download`, `${c.stage.name}-${c.step}.ckpt`);
      replace(downloaded, notice('ok', `saved ${file.name} (${file.size} bytes)`));
    } catch (error) {
      replace(
        downloaded,
        notice('error', `download failed: ${error instanceof Error ? error.message : String(error)}`),
      );
    }
  };
  let shown = '';
  const alias = aliasForm(() => {
    shown = ''; // the table shows the new alias on the next refresh
    refresh();
  });
  const element = section('Checkpoints', { testid: 'checkpoints-card' }, tableBox, downloaded, alias.element);

  /** @param {RunView} r */
  const update = (r) => {
    /** @type {CheckpointRow[]} */
    const rows = r.stages.flatMap((s) => s.checkpoints.map((c) => ({ ...c, stage: s })));
    const signature = JSON.stringify([rows.map((c) => c.id), r.aliases]);
    if (signature === shown) return;
    shown = signature;
    /** @param {string} cid */
    const aliasesOf = (cid) => r.aliases.filter((a) => a.checkpointId === cid).map((a) => a.name);
    replace(
      tableBox,
      rows.length
        ? h('div', { class: 'table-wrap' }, checkpointsTable(rows, aliasesOf, save))
        : h('p', { class: 'muted', testid: 'checkpoints-empty' }, 'No checkpoints yet.'),
    );
    alias.choices(rows, aliasesOf);
  };

  return { element, update };
}

/**
 * @param {CheckpointRow[]} rows
 * @param {(checkpointId: string) => string[]} aliasesOf
 * @param {(row: CheckpointRow) => Promise<void>} save  downloads a checkpoint (with the tab's key)
 */
function checkpointsTable(rows, aliasesOf, save) {
  return h(
    'table',
    { class: 'table compact', testid: 'checkpoints-table', 'data-count': rows.length },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['stage', 'step', 'id', 'aliases', 'created', ''].map((t) => h('th', {}, t)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((c) =>
        h(
          'tr',
          { testid: 'checkpoint-row', 'data-checkpoint-id': c.id, 'data-stage': c.stage.name, 'data-step': c.step },
          h('td', {}, `${c.stage.index + 1}. ${c.stage.name}`),
          h('td', { class: 'num' }, c.step),
          h('td', {}, shortId(c.id)),
          h(
            'td',
            { testid: 'checkpoint-aliases' },
            aliasesOf(c.id).map((a) => h('span', { class: 'tag alias' }, a)),
          ),
          h('td', { class: 'small' }, time(c.createdAt)),
          h(
            'td',
            { class: 'actions' },
            h(
              'button',
              { type: 'button', class: 'link', testid: 'checkpoint-download', onclick: () => void save(c) },
              'download',
            ),
            h('a', { href: `#/playground?checkpoint=${c.id}`, testid: 'checkpoint-play' }, 'try it'),
          ),
        ),
      ),
    ),
  );
}

/**
 * "Name a checkpoint": a select of the run's checkpoints, a name, and the API's answer.
 * @param {() => void} onSet  after an alias was set
 */
function aliasForm(onSet) {
  const select = /** @type {HTMLSelectElement} */ (
    h('select', { testid: 'alias-checkpoint', 'aria-label': 'checkpoint', required: true })
  );
  const name = /** @type {HTMLInputElement} */ (
    h('input', {
      testid: 'alias-name',
      placeholder: 'alias, e.g. GuoJing',
      pattern: '[A-Za-z0-9_.\\-]{1,64}',
      required: true,
      'aria-label': 'alias name',
    })
  );
  const result = h('div', { testid: 'alias-result' });
  const form = h(
    'form',
    {
      class: 'row alias-form',
      testid: 'alias-form',
      onsubmit: (/** @type {Event} */ e) => {
        e.preventDefault();
        void submit();
      },
    },
    h('span', {}, 'Name a checkpoint:'),
    select,
    name,
    h('button', { type: 'submit', testid: 'alias-submit' }, 'Set alias'),
  );

  const submit = async () => {
    try {
      /** @type {Pick<import('../../lib/api.js').AliasView, 'name' | 'checkpointId'>} */
      const alias = await api(`/v1/aliases/${encodeURIComponent(name.value.trim())}`, {
        method: 'PUT',
        body: { checkpoint: select.value },
      });
      replace(result, notice('ok', `${alias.name} → checkpoint ${alias.checkpointId.slice(0, 8)}`));
      name.value = '';
      onSet();
    } catch (error) {
      replace(result, notice('error', error instanceof Error ? error.message : String(error)));
    }
  };

  return {
    element: h('div', {}, form, result),
    /**
     * The select keeps its choice across refreshes; the newest checkpoint is the default.
     * @param {CheckpointRow[]} rows
     * @param {(checkpointId: string) => string[]} aliasesOf
     */
    choices(rows, aliasesOf) {
      const previous = select.value;
      replace(
        select,
        [...rows].reverse().map((c) => {
          const names = aliasesOf(c.id);
          return h(
            'option',
            { value: c.id },
            `${c.stage.name} @ ${c.step}${names.length ? ` (${names.join(', ')})` : ''}`,
          );
        }),
      );
      if (previous && rows.some((c) => c.id === previous)) select.value = previous;
      form.hidden = rows.length === 0;
    },
  };
}
