// @ts-check
/**
 * #/playground: sample from a checkpoint or an alias. The choices come from GET /v1/aliases
 * and GET /v1/checkpoints; the form posts to POST /v1/generate and shows every output with
 * the generation speed. #/playground?checkpoint=<id> or ?alias=<name> preselects a model.
 */
import { api } from '../lib/api.js';
import { h, notice, num, replace, section } from '../lib/dom.js';

/**
 * @typedef {import('../lib/api.js').CheckpointView} CheckpointView
 * @typedef {import('../lib/api.js').AliasView} AliasView
 */

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').PageContext} ctx
 */
export function render(root, ctx) {
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
  /**
   * @param {string} testid
   * @param {string} value
   * @param {Record<string, string | number>} limits
   */
  const numberInput = (testid, value, limits) =>
    /** @type {HTMLInputElement} */ (h('input', { type: 'number', testid, value, required: true, ...limits }));
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
  const output = h('ol', { class: 'outputs big', testid: 'playground-output', 'data-count': 0 });
  const stats = h('div', { class: 'stats', testid: 'playground-stats' });
  /** @type {Map<string, CheckpointView>} */
  const checkpoints = new Map();
  /** @type {Map<string, string>} */
  const aliasTarget = new Map();

  /** @param {string} label @param {HTMLElement} input @param {string} [hint] */
  const field = (label, input, hint) =>
    h(
      'label',
      { class: 'field' },
      h('span', { class: 'field-label' }, label),
      input,
      hint ? h('span', { class: 'small muted' }, hint) : null,
    );

  const form = h(
    'form',
    {
      testid: 'playground-form',
      class: 'playground',
      onsubmit: (/** @type {Event} */ e) => {
        e.preventDefault();
        void generate();
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

  replace(
    root,
    h('div', { class: 'page-title' }, h('h1', {}, 'Playground')),
    section('Sample from a model', { testid: 'playground-card' }, form),
    section('Outputs', { testid: 'playground-results' }, stats, output),
  );

  /** The kind of the selected model's stage, for the prompt's placeholder. */
  const selectedKind = () => {
    const [type, ref] = splitChoice(model.value);
    const cid = type === 'alias' ? aliasTarget.get(ref) : ref;
    return cid ? checkpoints.get(cid)?.stage.kind : undefined;
  };
  model.addEventListener('change', () => {
    prompt.placeholder =
      selectedKind() === 'sft' ? 'A question, e.g. 《静夜思》的作者是谁？' : 'A prompt to continue, e.g. 床前明月光';
  });

  const load = async () => {
    try {
      const [{ aliases }, list] = /** @type {[{ aliases: AliasView[] }, { checkpoints: CheckpointView[] }]} */ (
        await Promise.all([api('/v1/aliases'), api('/v1/checkpoints?limit=500')])
      );
      for (const c of list.checkpoints) checkpoints.set(c.id, c);
      for (const a of aliases) aliasTarget.set(a.name, a.checkpointId);
      /** @param {string} cid */
      const describe = (cid) => {
        const c = checkpoints.get(cid);
        return c ? `${c.run.name} / ${c.stage.name} @ ${c.step} (${c.stage.kind})` : `checkpoint ${cid.slice(0, 8)}`;
      };
      replace(
        model,
        !aliases.length && !list.checkpoints.length
          ? h('option', { value: '' }, 'No checkpoints yet: train a run first')
          : null,
        aliases.length
          ? h(
              'optgroup',
              { label: 'Aliases' },
              aliases.map((a) => h('option', { value: `alias:${a.name}` }, `${a.name} → ${describe(a.checkpointId)}`)),
            )
          : null,
        list.checkpoints.length
          ? h(
              'optgroup',
              { label: 'Checkpoints (newest first)' },
              list.checkpoints.map((c) => h('option', { value: `checkpoint:${c.id}` }, describe(c.id))),
            )
          : null,
      );
      const wanted = ctx.query.get('checkpoint')
        ? `checkpoint:${ctx.query.get('checkpoint')}`
        : ctx.query.get('alias')
          ? `alias:${ctx.query.get('alias')}`
          : '';
      if (wanted && [...model.options].some((o) => o.value === wanted)) model.value = wanted;
      model.dispatchEvent(new Event('change'));
      root.dataset.state = 'ready';
    } catch (error) {
      replace(errorBox, notice('error', error instanceof Error ? error.message : String(error), 'page-error'));
      root.dataset.state = 'error';
    }
  };

  let active = true;
  /** @type {AbortController | undefined} */
  let inFlight;
  const generate = async () => {
    const [type, ref] = splitChoice(model.value);
    if (!ref) {
      replace(errorBox, notice('error', 'Choose a model first.'));
      return;
    }
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
    submit.disabled = true;
    submit.textContent = 'Generating…';
    output.setAttribute('aria-busy', 'true');
    replace(errorBox);
    inFlight = new AbortController();
    try {
      /** @type {import('../lib/api.js').GenerateView} */
      const result = await api('/v1/generate', { method: 'POST', body, signal: inFlight.signal });
      if (!active) return;
      const answer = body.mode ? body.mode === 'answer' : selectedKind() === 'sft';
      replace(
        output,
        result.outputs.map((text) =>
          h('li', { testid: 'playground-sample' }, answer ? null : h('span', { class: 'prompt' }, prompt.value), text),
        ),
      );
      output.dataset.count = String(result.outputs.length);
      const c = checkpoints.get(result.checkpointId);
      replace(
        stats,
        stat('tokens/s', num(result.tokensPerSec, 4), 'playground-speed'),
        stat('seconds', num(result.seconds, 3), 'playground-seconds'),
        stat('tokens', String(result.tokens)),
        stat('model', result.warm ? 'warm (already loaded)' : 'cold (loaded now)', 'playground-warm'),
        stat('worker', result.workerId),
        stat('checkpoint', c ? `${c.run.name} / ${c.stage.name} @ ${c.step}` : result.checkpointId.slice(0, 8)),
      );
    } catch (error) {
      if (!active) return;
      replace(errorBox, notice('error', error instanceof Error ? error.message : String(error)));
    } finally {
      output.removeAttribute('aria-busy');
      submit.disabled = false;
      submit.textContent = 'Generate';
    }
  };

  void load();
  return () => {
    active = false;
    inFlight?.abort();
  };
}

/**
 * "alias:GuoJing" → ["alias", "GuoJing"]; "checkpoint:<id>" → ["checkpoint", id].
 * @param {string} value
 * @returns {[string, string]}
 */
function splitChoice(value) {
  const at = value.indexOf(':');
  return at < 0 ? ['', ''] : [value.slice(0, at), value.slice(at + 1)];
}

/**
 * @param {string} label
 * @param {string} value
 * @param {string} [testid]
 */
function stat(label, value, testid) {
  return h(
    'div',
    { class: 'stat' },
    h('div', { class: 'stat-label' }, label),
    h('div', { class: 'stat-value', testid }, value),
  );
}
