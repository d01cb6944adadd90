// @ts-check
/**
 * #/playground: sample from a checkpoint or an alias. The choices come from GET /v1/aliases
 * and GET /v1/checkpoints; the form posts to POST /v1/generate and shows every output with
 * the generation speed. #/playground?checkpoint=<id> or ?alias=<name> preselects a model.
 * The cards are one module each, in playground/.
 */
import { api } from '../lib/api.js';
import { h, replace } from '../lib/dom.js';
import { formCard } from './playground/form.js';
import { modelCatalog } from './playground/models.js';
import { outputsCard } from './playground/outputs.js';

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').PageContext} ctx
 */
export function render(root, ctx) {
  const form = formCard({ onSubmit: () => void generate() });
  const outputs = outputsCard();
  const catalog = modelCatalog();
  replace(root, h('div', { class: 'page-title' }, h('h1', {}, 'Playground')), form.element, outputs.element);

  form.model.addEventListener('change', () => {
    form.prompt.placeholder =
      catalog.kindOf(form.model.value) === 'sft'
        ? 'A question, e.g. 《静夜思》的作者是谁？'
        : 'A prompt to continue, e.g. 床前明月光';
  });

  const load = async () => {
    try {
      await catalog.load(form.model, ctx.query);
      form.model.dispatchEvent(new Event('change'));
      root.dataset.state = 'ready';
    } catch (error) {
      form.showError(error instanceof Error ? error.message : String(error), 'page-error');
      root.dataset.state = 'error';
    }
  };

  let active = true;
  /** @type {AbortController | undefined} */
  let inFlight;
  const generate = async () => {
    const { ref, body } = form.request();
    if (!ref) {
      form.showError('Choose a model first.');
      return;
    }
    form.setBusy(true);
    outputs.setBusy(true);
    form.showError(null);
    inFlight = new AbortController();
    try {
      /** @type {import('../lib/api.js').GenerateView} */
      const result = await api('/v1/generate', {
        method: 'POST',
        body,
        signal: inFlight.signal,
      });
      if (!active) return;
      const answer = body.mode ? body.mode === 'answer' : catalog.kindOf(form.model.value) === 'sft';
      outputs.update(result, answer ? null : form.prompt.value, catalog.checkpoints.get(result.checkpointId));
    } catch (error) {
      if (!active) return;
      form.showError(error instanceof Error ? error.message : String(error));
    } finally {
      outputs.setBusy(false);
      form.setBusy(false);
    }
  };

  void load();
  return () => {
    active = false;
    inFlight?.abort();
  };
}
