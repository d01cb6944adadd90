// @ts-check
/**
 * The runs page's "New run" card: a curriculum as JSON, submitted to POST /v1/runs as typed.
 */
import { api } from '../../lib/api.js';
import { h, notice, replace } from '../../lib/dom.js';

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

/** @param {{ refresh: () => void }} actions  refresh: the list, once a run is submitted */
export function newRunCard({ refresh }) {
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
      /** @type {import('../../lib/api.js').SubmittedRunView} */
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
      refresh();
    } catch (error) {
      replace(formError, notice('error', error instanceof Error ? error.message : String(error)));
    } finally {
      submitButton.disabled = false;
    }
  };

  const element = h(
    'details',
    { class: 'card', open: true },
    h('summary', {}, h('h2', { class: 'inline' }, 'New run')),
    form,
  );
  return { element };
}
