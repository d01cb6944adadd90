// @ts-check
/**
 * The playground's "Sample from a model" card: the model, the prompt, the sampling settings
 * and Generate; request() turns what was typed into the body of POST /v1/generate.
 */
import { h, notice, replace, section } from '../../lib/dom.js';
import { splitChoice } from './models.js';

/** @param {{ onSubmit: () => void }} actions */
export function formCard({ onSubmit }) {
  const model = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { testid: 'playground-model', 'aria-label': 'model', required: true },
      h('option', { value: '' }, 'Loading…'),
    )
  );
  const prompt = /** @type {HTMLTextAreaElement} */ (
    h('textarea', {
      testid: 'playground-prompt',
      rows: 3,
      'aria-label': 'prompt',
      placeholder: 'A prompt to continue, e.g. 床前明月光',
    })
  );
  const mode = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { testid: 'playground-mode', 'aria-label': 'mode' },
      h('option', { value: '' }, 'auto (answer for an SFT checkpoint)'),
      h('option', { value: 'completion' }, 'completion: continue the prompt'),
      h('option', { value: 'answer' }, 'answer: the prompt is a question'),
    )
  );
  const temperature = numberInput('playground-temperature', '0.8', { min: 0, max: 10, step: 0.05 });
  const topK = numberInput('playground-topk', '0', { min: 0, step: 1 });
  const topP = numberInput('playground-topp', '1', { min: 0.01, max: 1, step: 0.01 });
  const maxTokens = numberInput('playground-max-tokens', '64', { min: 1, max: 2048, step: 1 });
  const samples = numberInput('playground-samples', '5', { min: 1, max: 20, step: 1 });
  const seed = /** @type {HTMLInputElement} */ (
    h('input', { type: 'number', testid: 'playground-seed', min: 0, step: 1, placeholder: 'random' })
  );
  const submit = /** @type {HTMLButtonElement} */ (
    h('button', { type: 'submit', class: 'primary', testid: 'playground-submit' }, 'Generate')
  );
  const errorBox = h('div', { testid: 'playground-error' });
  const form = h(
    'form',
    {
      testid: 'playground-form',
      class: 'playground',
      onsubmit: (/** @type {Event} */ e) => {
        e.preventDefault();
        onSubmit();
      },
    },
    field('Model', model),
    field('Prompt or question', prompt),
    h(
      'div',
      { class: 'fields' },
      field('Mode', mode),
      field('Temperature', temperature, '0 = greedy'),
      field('Top-k', topK, '0 = off'),
      field('Top-p', topP),
      field('Max tokens', maxTokens),
      field('Samples', samples),
      field('Seed', seed, 'optional'),
    ),
    h('div', { class: 'row' }, submit),
    errorBox,
  );
  const element = section('Sample from a model', { testid: 'playground-card' }, form);

  /** @returns {{ ref: string, body: Record<string, unknown> }}  ref '' when no model is chosen */
  const request = () => {
    const [type, ref] = splitChoice(model.value);
    /** @type {Record<string, unknown>} */
    const body = {
      [type === 'alias' ? 'alias' : 'checkpoint']: ref,
      prompt: prompt.value,
      temperature: Number(temperature.value),
      topK: Number(topK.value),
      topP: Number(topP.value),
      maxTokens: Number(maxTokens.value),
      samples: Number(samples.value),
    };
    if (mode.value) body.mode = mode.value;
    if (seed.value !== '') body.seed = Number(seed.value);
    return { ref, body };
  };
  /** @param {boolean} busy */
  const setBusy = (busy) => {
    submit.disabled = busy;
    submit.textContent = busy ? 'Generating…' : 'Generate';
  };
  /** @param {string | null} text  null clears the error @param {string} [testid] */
  const showError = (text, testid) =>
    text === null ? replace(errorBox) : replace(errorBox, notice('error', text, testid));

  return { element, model, prompt, request, setBusy, showError };
}

/**
 * @param {string} testid
 * @param {string} value
 * @param {Record<string, string | number>} limits
 */
function numberInput(testid, value, limits) {
  return /** @type {HTMLInputElement} */ (h('input', { type: 'number', testid, value, required: true, ...limits }));
}

/** @param {string} label @param {HTMLElement} input @param {string} [hint] */
function field(label, input, hint) {
  return h(
    'label',
    { class: 'field' },
    h('span', { class: 'field-label' }, label),
    input,
    hint ? h('span', { class: 'small muted' }, hint) : null,
  );
}
