// @ts-check
/**
 * The run page's evaluation card: perplexity, validation loss and ROUGE-L of the final
 * model, the loss of each stage's held-out split, the sampled outputs and the held-out
 * questions with their generated answers. Redrawn only when the evaluation changes (an
 * open <details> stays open across refreshes).
 *
 * @typedef {import('../../lib/api.js').Evaluation} Evaluation
 */
import { h, isActive, num, replace, section, time } from '../../lib/dom.js';

export function evaluationCard() {
  const box = h('div', { testid: 'evaluation' });
  const element = section('Evaluation', { testid: 'evaluation-card' }, box);
  let shown = '';

  /** @param {import('../../lib/api.js').RunView} r */
  const update = (r) => {
    const e = r.evaluation;
    const key = e ? e.id : `none-${r.status}`;
    if (key === shown) return;
    shown = key;
    if (!e) {
      const text = isActive(r.status) ? 'The evaluation runs after the last stage.' : 'This run has no evaluation.';
      replace(box, h('p', { class: 'muted', testid: 'evaluation-empty' }, text));
      return;
    }
    // JSON columns: the API passes on what the worker wrote (core's Evaluation).
    const perStage = /** @type {Evaluation['perplexity']} */ (Array.isArray(e.perStage) ? e.perStage : []);
    const samples = /** @type {Evaluation['samples']} */ (Array.isArray(e.samples) ? e.samples : []);
    const rouge = /** @type {Evaluation['rouge'] | null} */ (e.rouge);
    replace(
      box,
      h(
        'div',
        { class: 'stats' },
        stat('perplexity', num(e.perplexity), 'evaluation-perplexity'),
        stat('val loss', num(e.valLoss)),
        stat(
          'ROUGE-L f',
          rouge?.mean ? num(rouge.mean.f, 3) : '—',
          'evaluation-rouge',
          rouge?.mean
            ? `precision ${num(rouge.mean.precision, 3)} · recall ${num(rouge.mean.recall, 3)} · ${rouge.pairs} pairs of ${rouge.stage}`
            : 'no SFT stage',
        ),
        stat('evaluated', time(e.createdAt)),
      ),
      h('h3', {}, 'Per stage'),
      perStageTable(perStage),
      h('h3', {}, 'Samples'),
      sampleList(samples),
      rouge?.items?.length ? questionsTable(rouge.items) : null,
    );
  };

  return { element, update };
}

/** @param {Evaluation['perplexity']} perStage */
function perStageTable(perStage) {
  return h(
    'table',
    { class: 'table compact', testid: 'evaluation-per-stage' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'held-out split of'),
        h('th', { class: 'num' }, 'loss'),
        h('th', { class: 'num' }, 'perplexity'),
      ),
    ),
    h(
      'tbody',
      {},
      perStage.map((p) =>
        h(
          'tr',
          {},
          h('td', {}, p.stage),
          h('td', { class: 'num' }, num(p.loss)),
          h('td', { class: 'num' }, num(p.perplexity)),
        ),
      ),
    ),
  );
}

/** @param {Evaluation['samples']} samples */
function sampleList(samples) {
  return h(
    'div',
    { testid: 'evaluation-samples' },
    samples.map((s) =>
      h(
        'div',
        { class: 'sample-group' },
        h(
          'div',
          { class: 'small muted' },
          `${s.mode === 'answer' ? 'question' : 'prompt'}: `,
          h('span', { class: 'prompt' }, s.prompt || '(empty)'),
          ` · ${num(s.tokensPerSec, 3)} tokens/s`,
        ),
        h(
          'ol',
          { class: 'outputs' },
          s.outputs.map((o) =>
            h(
              'li',
              { testid: 'evaluation-sample' },
              h('span', { class: 'prompt' }, s.mode === 'completion' ? s.prompt : ''),
              o,
            ),
          ),
        ),
      ),
    ),
  );
}

/** @param {NonNullable<Evaluation['rouge']>['items']} items */
function questionsTable(items) {
  return h(
    'details',
    {},
    h('summary', {}, `Held-out questions (${items.length})`),
    h(
      'table',
      { class: 'table compact', testid: 'evaluation-qa' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['question', 'reference', 'generated', 'ROUGE-L f'].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        items.map((it) =>
          h(
            'tr',
            {},
            h('td', {}, it.question),
            h('td', {}, it.reference),
            h('td', {}, it.generated),
            h('td', { class: 'num' }, num(it.rouge?.f, 3)),
          ),
        ),
      ),
    ),
  );
}

/**
 * @param {string} label
 * @param {string} value
 * @param {string} [testid]
 * @param {string} [detail]
 */
function stat(label, value, testid, detail) {
  return h(
    'div',
    { class: 'stat' },
    h('div', { class: 'stat-label' }, label),
    h('div', { class: 'stat-value', testid }, value),
    detail ? h('div', { class: 'small muted' }, detail) : null,
  );
}
