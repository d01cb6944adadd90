// @ts-check
/**
 * #/runs/<id>: one run. Every 2 s while the run is queued or running it reads
 * GET /v1/runs/:id (stages, evaluation, aliases), GET /v1/runs/:id/metrics (trainLoss,
 * valLoss, lr of every stage, with stage offsets) and GET /v1/runs/:id/events, and hands
 * each card (one module each, in run/) what it shows; the charts are updated in place, the
 * forms keep what was typed.
 *
 * @typedef {import('../lib/api.js').RunView} RunView
 * @typedef {import('../lib/api.js').RunMetrics} RunMetrics
 * @typedef {import('../lib/api.js').RunEvent} RunEvent
 */
import { api, poll, POLL_MS } from '../lib/api.js';
import { h, isActive, notice, replace } from '../lib/dom.js';
import { lossCard, lrCard } from './run/charts.js';
import { checkpointsCard } from './run/checkpoints.js';
import { evaluationCard } from './run/evaluation.js';
import { eventsCard } from './run/events.js';
import { headerCard } from './run/header.js';
import { timelineCard } from './run/timeline.js';

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').PageContext} ctx
 */
export function render(root, ctx) {
  const id = ctx.path[1] ?? '';
  /** @type {RunView | undefined} */
  let run;
  let gone = false;

  const pageError = h('div');
  const refresh = () => poller.kick();
  const header = headerCard(id, { showError: (text) => replace(pageError, notice('error', text)), refresh });
  const timeline = timelineCard();
  const loss = lossCard();
  const lr = lrCard();
  const evaluation = evaluationCard();
  const checkpoints = checkpointsCard({ refresh });
  const events = eventsCard(id);
  replace(root, pageError, ...[header, timeline, loss, lr, evaluation, checkpoints, events].map((c) => c.element));

  const tick = async () => {
    /** @type {[RunView, RunMetrics, { events: RunEvent[], nextCursor: string | null }]} */
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
      if (/** @type {{ status?: number }} */ (error).status === 404) gone = true;
      throw error;
    }
    replace(pageError);
    const [view, metrics, list] = answers;
    run = view;
    header.update(view);
    timeline.update(view);
    loss.update(metrics);
    lr.update(metrics);
    evaluation.update(view);
    events.update(list.events, list.nextCursor);
    checkpoints.update(view);
    root.dataset.state = 'ready';
    root.dataset.runStatus = view.status;
  };

  const poller = poll(tick, POLL_MS, () => !gone && (!run || isActive(run.status)));

  return () => {
    poller.stop();
    loss.destroy();
    lr.destroy();
    document.title = 'MiniGLM Foundry';
  };
}
