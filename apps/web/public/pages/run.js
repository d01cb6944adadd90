// @ts-check
/**
 * #/runs/<id>: one run. Every 2 s while the run is queued or running it reads
 * GET /v1/runs/:id (stages, evaluation, aliases), GET /v1/runs/:id/metrics (trainLoss,
 * valLoss, lr of every stage, with stage offsets) and GET /v1/runs/:id/events; the charts
 * are updated in place, the forms keep what was typed.
 */
import { api, poll, POLL_MS } from '../lib/api.js';
import { alignSeries, lineChart } from '../lib/chart.js';
import {
  count,
  duration,
  h,
  isActive,
  notice,
  num,
  pill,
  progressBar,
  replace,
  section,
  shortId,
  time,
} from '../lib/dom.js';

/**
 * @typedef {{ id: string, step: number, createdAt: string }} CheckpointRef
 * @typedef {{ id: string, index: number, name: string, kind: string, status: string, step: number, iterations: number,
 *   progress: number, etaSeconds: number | null, tokensPerSec: number | null, backend: string | null, attempts: number,
 *   workerId: string | null, parentCheckpointId: string | null, datasetId: string | null,
 *   metrics: { trainLoss: number | null, valLoss: number | null, lr: number | null, gradNorm: number | null },
 *   checkpoints: CheckpointRef[], startedAt: string | null, finishedAt: string | null, error: string | null }} StageView
 * @typedef {{ id: string, name: string, status: string, error: string | null, tags: string[], seed: number,
 *   params: number | null, tokenizer: { name: string, vocabSize: number | null }, curriculum: any,
 *   createdAt: string, startedAt: string | null, finishedAt: string | null, etaSeconds: number | null,
 *   stages: StageView[], evaluation: any, aliases: { name: string, checkpointId: string }[] }} RunView
 * @typedef {{ stages: { id: string, index: number, name: string, iterations: number, offset: number }[],
 *   series: Record<string, Record<string, [number, number][]>> }} MetricsView
 */

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').PageContext} ctx
 */
export function render(root, ctx) {
  const id = ctx.path[1] ?? '';
  /** @type {RunView | undefined} */
  let run;
  let gone = false;

  const header = h(
    'section',
    { class: 'card run-header', testid: 'run-header' },
    h('p', { class: 'muted' }, 'Loading…'),
  );
  const pageError = h('div');
  const timeline = h('ol', { class: 'timeline', testid: 'stage-timeline' });
  const lossBox = h('div', { testid: 'loss-chart' });
  const lrBox = h('div', { testid: 'lr-chart' });
  const evaluationBox = h('div', { testid: 'evaluation' });
  const eventsBox = h('div');
  const checkpointsBox = h('div');
  const aliasBox = h('div');

  replace(
    root,
    pageError,
    header,
    section('Curriculum', { testid: 'stages-card' }, timeline),
    section(
      'Loss',
      { testid: 'loss-card' },
      h(
        'p',
        { class: 'muted small' },
        'Train and validation loss of every stage on one axis (global step = stage offset + step); dashed lines mark where each stage starts.',
      ),
      lossBox,
    ),
    section('Learning rate', { testid: 'lr-card' }, lrBox),
    section('Evaluation', { testid: 'evaluation-card' }, evaluationBox),
    section('Checkpoints', { testid: 'checkpoints-card' }, checkpointsBox, aliasBox),
    section('Events', { testid: 'events-card' }, eventsBox),
  );

  /** @type {ReturnType<typeof lineChart> | undefined} */
  let lossChart;
  /** @type {ReturnType<typeof lineChart> | undefined} */
  let lrChart;
  let evaluationShown = '';
  let checkpointsShown = '';

  const tick = async () => {
    /** @type {[RunView, MetricsView, { events: any[] }]} */
    let answers;
    try {
      answers = await Promise.all([
        api(`/v1/runs/${encodeURIComponent(id)}`),
        api(`/v1/runs/${encodeURIComponent(id)}/metrics?keys=trainLoss,valLoss,lr`),
        api(`/v1/runs/${encodeURIComponent(id)}/events`),
      ]);
    } catch (error) {
      replace(pageError, notice('error', error instanceof Error ? error.message : String(error), 'page-error'));
      if (!run) root.dataset.state = 'error';
      if (/** @type {any} */ (error).status === 404) gone = true;
      throw error;
    }
    replace(pageError);
    const [view, metrics, { events }] = answers;
    run = view;
    renderHeader(view);
    renderTimeline(view);
    renderCharts(metrics);
    renderEvaluation(view);
    renderEvents(events);
    renderCheckpoints(view);
    root.dataset.state = 'ready';
    root.dataset.runStatus = view.status;
  };

  /** @param {RunView} r */
  const renderHeader = (r) => {
    document.title = `${r.name} · MiniGLM Foundry`;
    const m = r.curriculum?.model ?? {};
    const active = isActive(r.status);
    replace(
      header,
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
      h(
        'dl',
        { class: 'facts' },
        fact('id', h('code', {}, r.id)),
        fact('tags', r.tags.length ? r.tags.map((t) => h('span', { class: 'tag' }, t)) : '—'),
        fact(
          'model',
          `${m.kind ?? 'gpt'} ${m.layers}×${m.dim}${m.heads ? `, ${m.heads} heads` : ''}, block ${m.blockSize}`,
        ),
        fact('parameters', count(r.params)),
        fact('tokenizer', `${r.tokenizer.name}${r.tokenizer.vocabSize ? ` (${r.tokenizer.vocabSize} tokens)` : ''}`),
        fact('seed', String(r.seed)),
        fact('created', time(r.createdAt)),
        fact('started', time(r.startedAt)),
        fact('finished', time(r.finishedAt)),
        fact('ETA', h('span', { testid: 'run-eta' }, active ? duration(r.etaSeconds) : '—')),
        r.curriculum?.initFrom ? fact('init from', h('code', {}, r.curriculum.initFrom)) : null,
      ),
    );
  };

  const cancel = async () => {
    // Cancelling cannot be undone (the checkpoints stay): ask first.
    if (!window.confirm('Cancel this run? Its running stage stops at its next iteration; its checkpoints stay.'))
      return;
    try {
      await api(`/v1/runs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
    } catch (error) {
      replace(pageError, notice('error', `Cancel: ${error instanceof Error ? error.message : String(error)}`));
    }
    poller.kick();
  };

  /** @param {RunView} r */
  const renderTimeline = (r) => {
    replace(
      timeline,
      r.stages.map((s) => {
        const cfg = r.curriculum?.stages?.[s.index] ?? {};
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
            h('span', { class: 'muted small' }, `${s.kind} · ${cfg.dataset?.source ?? ''}`),
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
              cfg.lr !== undefined ? `lr ${cfg.lr}` : null,
              cfg.batchSize ? `batch ${cfg.batchSize}` : null,
            ]
              .filter(Boolean)
              .join(' · '),
          ),
          s.error ? h('div', { class: 'small error-text' }, s.error) : null,
        );
      }),
    );
  };

  /** @param {MetricsView} metrics */
  const renderCharts = (metrics) => {
    const offsets = new Map(metrics.stages.map((s) => [s.name, s.offset]));
    const total = metrics.stages.reduce((sum, s) => sum + s.iterations, 0);
    /** @param {string} key */
    const globalSeries = (key) =>
      Object.entries(metrics.series[key] ?? {}).flatMap(([stage, points]) =>
        points.map(([step, value]) => /** @type {[number, number]} */ ([(offsets.get(stage) ?? 0) + step, value])),
      );
    const boundaries = metrics.stages.map((s) => ({ x: s.offset, label: s.name }));
    const lossData = alignSeries([globalSeries('trainLoss'), globalSeries('valLoss')]);
    const lrData = alignSeries([globalSeries('lr')]);
    if (!lossChart) {
      lossChart = lineChart(
        lossBox,
        {
          series: [
            { label: 'train loss', color: '#2563eb' },
            { label: 'val loss', color: '#dc2626', points: true, width: 2 },
          ],
          xLabel: 'step (all stages)',
          yLabel: 'loss',
          boundaries,
          xMax: total,
          height: 300,
        },
        lossData,
      );
      lrChart = lineChart(
        lrBox,
        {
          series: [{ label: 'learning rate', color: '#059669' }],
          xLabel: 'step (all stages)',
          yLabel: 'lr',
          boundaries,
          xMax: total,
          height: 180,
        },
        lrData,
      );
    } else {
      lossChart.update(lossData, { boundaries, xMax: total });
      lrChart?.update(lrData, { boundaries, xMax: total });
    }
  };

  /** @param {RunView} r */
  const renderEvaluation = (r) => {
    const e = r.evaluation;
    const key = e ? e.id : `none-${r.status}`;
    if (key === evaluationShown) return;
    evaluationShown = key;
    if (!e) {
      replace(
        evaluationBox,
        h(
          'p',
          { class: 'muted', testid: 'evaluation-empty' },
          isActive(r.status) ? 'The evaluation runs after the last stage.' : 'This run has no evaluation.',
        ),
      );
      return;
    }
    /** @type {{ stage: string, loss: number, perplexity: number }[]} */
    const perStage = Array.isArray(e.perStage) ? e.perStage : [];
    /** @type {{ prompt: string, mode: string, outputs: string[], tokensPerSec: number }[]} */
    const samples = Array.isArray(e.samples) ? e.samples : [];
    const rouge = e.rouge;
    replace(
      evaluationBox,
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
      h(
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
      ),
      h('h3', {}, 'Samples'),
      h(
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
      ),
      rouge?.items?.length
        ? h(
            'details',
            {},
            h('summary', {}, `Held-out questions (${rouge.items.length})`),
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
                rouge.items.map((/** @type {any} */ it) =>
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
          )
        : null,
    );
  };

  /** @param {any[]} events */
  const renderEvents = (events) => {
    if (!events.length) {
      replace(eventsBox, h('p', { class: 'muted', testid: 'events-empty' }, 'No events yet.'));
      return;
    }
    replace(
      eventsBox,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table compact', testid: 'events-table', 'data-count': events.length },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['time', 'stage', 'event', 'step', 'worker', 'message'].map((t) => h('th', {}, t)),
            ),
          ),
          h(
            'tbody',
            {},
            events.map((e) =>
              h(
                'tr',
                { testid: 'event-row', 'data-type': e.type, class: `event-${e.type}` },
                h('td', { class: 'small' }, time(e.at)),
                h('td', {}, `${e.stageIndex + 1}. ${e.stage}`),
                h('td', {}, h('span', { class: `pill pill-event pill-${e.type}` }, e.type)),
                h('td', { class: 'num' }, e.step ?? '—'),
                h('td', { class: 'small' }, e.workerId ?? '—'),
                h('td', { class: 'small' }, e.message ?? ''),
              ),
            ),
          ),
        ),
      ),
    );
  };

  // The alias form is built once so that what is typed survives the refreshes.
  const aliasSelect = /** @type {HTMLSelectElement} */ (
    h('select', { testid: 'alias-checkpoint', 'aria-label': 'checkpoint', required: true })
  );
  const aliasName = /** @type {HTMLInputElement} */ (
    h('input', {
      testid: 'alias-name',
      placeholder: 'alias, e.g. GuoJing',
      pattern: '[A-Za-z0-9_.\\-]{1,64}',
      required: true,
      'aria-label': 'alias name',
    })
  );
  const aliasResult = h('div', { testid: 'alias-result' });
  const aliasForm = h(
    'form',
    {
      class: 'row alias-form',
      testid: 'alias-form',
      onsubmit: (/** @type {Event} */ e) => {
        e.preventDefault();
        void setAlias();
      },
    },
    h('span', {}, 'Name a checkpoint:'),
    aliasSelect,
    aliasName,
    h('button', { type: 'submit', testid: 'alias-submit' }, 'Set alias'),
  );
  replace(aliasBox, aliasForm, aliasResult);

  const setAlias = async () => {
    const name = aliasName.value.trim();
    try {
      const alias = await api(`/v1/aliases/${encodeURIComponent(name)}`, {
        method: 'PUT',
        body: { checkpoint: aliasSelect.value },
      });
      replace(aliasResult, notice('ok', `${alias.name} → checkpoint ${alias.checkpointId.slice(0, 8)}`));
      aliasName.value = '';
      checkpointsShown = '';
      poller.kick();
    } catch (error) {
      replace(aliasResult, notice('error', error instanceof Error ? error.message : String(error)));
    }
  };

  /** @param {RunView} r */
  const renderCheckpoints = (r) => {
    const rows = r.stages.flatMap((s) => s.checkpoints.map((c) => ({ ...c, stage: s })));
    const signature = JSON.stringify([rows.map((c) => c.id), r.aliases]);
    if (signature === checkpointsShown) return;
    checkpointsShown = signature;
    const aliasesOf = (/** @type {string} */ cid) => r.aliases.filter((a) => a.checkpointId === cid).map((a) => a.name);
    replace(
      checkpointsBox,
      rows.length
        ? h(
            'div',
            { class: 'table-wrap' },
            h(
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
                    {
                      testid: 'checkpoint-row',
                      'data-checkpoint-id': c.id,
                      'data-stage': c.stage.name,
                      'data-step': c.step,
                    },
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
                        'a',
                        { href: `/v1/checkpoints/${c.id}/download`, testid: 'checkpoint-download', download: '' },
                        'download',
                      ),
                      h('a', { href: `#/playground?checkpoint=${c.id}`, testid: 'checkpoint-play' }, 'try it'),
                    ),
                  ),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted', testid: 'checkpoints-empty' }, 'No checkpoints yet.'),
    );
    // The select keeps its choice across refreshes; the newest checkpoint is the default.
    const previous = aliasSelect.value;
    replace(
      aliasSelect,
      [...rows]
        .reverse()
        .map((c) =>
          h(
            'option',
            { value: c.id },
            `${c.stage.name} @ ${c.step}${aliasesOf(c.id).length ? ` (${aliasesOf(c.id).join(', ')})` : ''}`,
          ),
        ),
    );
    if (previous && rows.some((c) => c.id === previous)) aliasSelect.value = previous;
    aliasForm.hidden = rows.length === 0;
  };

  const poller = poll(tick, POLL_MS, () => !gone && (!run || isActive(run.status)));

  return () => {
    poller.stop();
    lossChart?.destroy();
    lrChart?.destroy();
    document.title = 'MiniGLM Foundry';
  };
}

/**
 * @param {string} label
 * @param {import('../lib/dom.js').Child | import('../lib/dom.js').Child[]} value
 */
function fact(label, value) {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, value));
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
