// @ts-check
/**
 * The playground's "Outputs" card: every sample of the last generation (after its prompt,
 * unless it answers a question) and its speed, time, tokens, warmth, worker and checkpoint.
 */
import { h, num, replace, section } from '../../lib/dom.js';

export function outputsCard() {
  const output = h('ol', { class: 'outputs big', testid: 'playground-output', 'data-count': 0 });
  const stats = h('div', { class: 'stats', testid: 'playground-stats' });
  const element = section('Outputs', { testid: 'playground-results' }, stats, output);

  /** @param {boolean} busy */
  const setBusy = (busy) => (busy ? output.setAttribute('aria-busy', 'true') : output.removeAttribute('aria-busy'));

  /**
   * @param {import('../../lib/api.js').GenerateView} result
   * @param {string | null} prompt  shown before each sample; null for answers
   * @param {import('../../lib/api.js').CheckpointView | undefined} c  the checkpoint that answered
   */
  const update = (result, prompt, c) => {
    replace(
      output,
      result.outputs.map((text) =>
        h('li', { testid: 'playground-sample' }, prompt === null ? null : h('span', { class: 'prompt' }, prompt), text),
      ),
    );
    output.dataset.count = String(result.outputs.length);
    replace(
      stats,
      stat('tokens/s', num(result.tokensPerSec, 4), 'playground-speed'),
      stat('seconds', num(result.seconds, 3), 'playground-seconds'),
      stat('tokens', String(result.tokens)),
      stat('model', result.warm ? 'warm (already loaded)' : 'cold (loaded now)', 'playground-warm'),
      stat('worker', result.workerId),
      stat('checkpoint', c ? `${c.run.name} / ${c.stage.name} @ ${c.step}` : result.checkpointId.slice(0, 8)),
    );
  };

  return { element, setBusy, update };
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
