// @ts-check
/**
 * The run page's curriculum card: one timeline item per stage with its status, progress,
 * speed, latest losses and the settings it was given.
 */
import { duration, h, num, pill, progressBar, replace, section } from '../../lib/dom.js';

export function timelineCard() {
  const timeline = h('ol', { class: 'timeline', testid: 'stage-timeline' });
  const element = section('Curriculum', { testid: 'stages-card' }, timeline);

  /** @param {import('../../lib/api.js').RunView} r */
  const update = (r) =>
    replace(
      timeline,
      r.stages.map((s) => stageItem(s, r.curriculum?.stages?.[s.index])),
    );

  return { element, update };
}

/**
 * @param {import('../../lib/api.js').StageView} s
 * @param {import('../../lib/api.js').RunView['curriculum']['stages'][number] | undefined} cfg  what the curriculum says of it
 */
function stageItem(s, cfg) {
  return h(
    'li',
    {
      class: `stage stage-${s.status}`,
      testid: 'stage-item',
      'data-stage': s.name,
      'data-status': s.status,
      'data-index': s.index,
    },
    h(
      'div',
      { class: 'stage-head' },
      h('strong', {}, `${s.index + 1}. ${s.name}`),
      h('span', { class: 'muted small' }, `${s.kind} · ${cfg?.dataset?.source ?? ''}`),
      pill(s.status, 'stage-status'),
    ),
    progressBar(s.progress, `${s.step}/${s.iterations}`, 'stage-progress'),
    h(
      'div',
      { class: 'small muted stage-details', testid: 'stage-details' },
      [
        s.tokensPerSec ? `${num(s.tokensPerSec, 3)} tokens/s` : null,
        s.status === 'running' && s.etaSeconds !== null ? `ETA ${duration(s.etaSeconds)}` : null,
        s.metrics.trainLoss !== null ? `train ${num(s.metrics.trainLoss)}` : null,
        s.metrics.valLoss !== null ? `val ${num(s.metrics.valLoss)}` : null,
        s.backend ? `backend ${s.backend}` : null,
        s.attempts > 1 ? `${s.attempts} attempts` : null,
        s.workerId ? `worker ${s.workerId}` : null,
        cfg?.lr !== undefined ? `lr ${cfg.lr}` : null,
        cfg?.batchSize ? `batch ${cfg.batchSize}` : null,
      ]
        .filter(Boolean)
        .join(' · '),
    ),
    s.error ? h('div', { class: 'small error-text' }, s.error) : null,
  );
}
