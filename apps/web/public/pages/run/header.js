// @ts-check
/**
 * The run page's header card: name, status, links to the lineage and compare pages, the
 * cancel button while the run is active, its error, and the facts (model, tokenizer, times).
 */
import { api } from '../../lib/api.js';
import { count, duration, h, isActive, notice, pill, replace, time } from '../../lib/dom.js';

/**
 * @param {string} id  the run's id, from the page's address
 * @param {{ showError: (text: string) => void, refresh: () => void }} page
 */
export function headerCard(id, { showError, refresh }) {
  const element = h(
    'section',
    { class: 'card run-header', testid: 'run-header' },
    h('p', { class: 'muted' }, 'Loading…'),
  );

  const cancel = async () => {
    // Cancelling cannot be undone (the checkpoints stay): ask first.
    if (!window.confirm('Cancel this run? Its running stage stops at its next iteration; its checkpoints stay.'))
      return;
    try {
      await api(`/v1/runs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
    } catch (error) {
      showError(`Cancel: ${error instanceof Error ? error.message : String(error)}`);
    }
    refresh();
  };

  /** @param {import('../../lib/api.js').RunView} r */
  const update = (r) => {
    document.title = `${r.name} · MiniGLM Foundry`;
    const active = isActive(r.status);
    replace(
      element,
      h(
        'div',
        { class: 'run-title-row' },
        h('h1', { testid: 'run-title' }, r.name),
        pill(r.status, 'run-status'),
        h('span', { class: 'spacer' }),
        h('a', { href: `#/lineage/${r.id}`, class: 'button', testid: 'run-lineage-link' }, 'Lineage'),
        h('a', { href: `#/compare?runs=${r.id}`, class: 'button', testid: 'run-compare-link' }, 'Compare…'),
        active
          ? h(
              'button',
              { type: 'button', class: 'danger', testid: 'run-cancel', onclick: () => void cancel() },
              'Cancel run',
            )
          : null,
      ),
      r.error ? notice('error', r.error, 'run-error') : null,
      facts(r),
    );
  };

  return { element, update };
}

/** @param {import('../../lib/api.js').RunView} r */
function facts(r) {
  const m = r.curriculum?.model;
  return h(
    'dl',
    { class: 'facts' },
    fact('id', h('code', {}, r.id)),
    fact('tags', r.tags.length ? r.tags.map((t) => h('span', { class: 'tag' }, t)) : '—'),
    fact(
      'model',
      `${m?.kind ?? 'gpt'} ${m?.layers}×${m?.dim}${m?.heads ? `, ${m.heads} heads` : ''}, block ${m?.blockSize}`,
    ),
    fact('parameters', count(r.params)),
    fact('tokenizer', `${r.tokenizer.name}${r.tokenizer.vocabSize ? ` (${r.tokenizer.vocabSize} tokens)` : ''}`),
    fact('seed', String(r.seed)),
    fact('created', time(r.createdAt)),
    fact('started', time(r.startedAt)),
    fact('finished', time(r.finishedAt)),
    fact('ETA', h('span', { testid: 'run-eta' }, isActive(r.status) ? duration(r.etaSeconds) : '—')),
    r.curriculum?.initFrom ? fact('init from', h('code', {}, r.curriculum.initFrom)) : null,
  );
}

/**
 * @param {string} label
 * @param {import('../../lib/dom.js').Child | import('../../lib/dom.js').Child[]} value
 */
function fact(label, value) {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, value));
}
