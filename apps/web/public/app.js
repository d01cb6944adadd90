// @ts-check
/**
 * The dashboard's entry point: a hash router that loads one page module at a time.
 *
 *   #/runs                 pages/runs.js        (also the default)
 *   #/runs/<id>            pages/run.js
 *   #/lineage/<id>         pages/lineage.js
 *   #/compare?runs=a,b     pages/compare.js
 *   #/playground           pages/playground.js  (?checkpoint=<id> or ?alias=<name> preselects)
 *
 * A page module exports `render(root, ctx)` and may return a cleanup function (stops its
 * polling, destroys its charts) that runs when the route changes.
 *
 * TESTIDS (data-testid) for browser tests. <main data-testid="page"> carries data-page
 * (runs|run|lineage|compare|playground|not-found) and data-state: "loading", then "ready"
 * after the page's first data arrived, or "error" (page-error holds the message).
 *
 * Everywhere
 *   brand, nav, nav-runs, nav-compare, nav-playground, nav-docs   header links
 *   page                 <main>, see above
 *   page-error           the message when the page's data cannot be loaded
 *   (status pills have class "pill pill-<status>" and data-status="<status>")
 *   signin               the sign-in box, shown on a 401 (lib/signin.js): signin-message,
 *                        signin-key (<input>), signin-submit, signin-error
 *   signout              header button while the tab keeps a key
 *
 * Runs (#/runs)
 *   runs-filter-status   <select> all|queued|running|succeeded|failed|cancelled
 *   runs-filter-tag      <input> tag filter (applied on change / Enter)
 *   runs-refresh         button: reload now
 *   runs-table           <table> of runs (data-count = number of rows)
 *   run-row              <tr> per run, data-run-id, data-status
 *     run-select         checkbox: pick the run for comparison
 *     run-link           <a href="#/runs/<id>"> the run's name
 *     run-status         status pill
 *     run-stage          current stage "index+1/n name" and its status
 *     run-progress       progress bar of the current stage (data-progress = 0..1)
 *     run-tokens         tokens/s of the current stage
 *     run-eta            ETA of the whole run
 *     run-best-val       best validation loss so far
 *     run-tags           tags
 *     run-cancel         button (only while queued/running): POST /v1/runs/:id/cancel
 *   runs-empty           shown when no run matches
 *   compare-selected     button: go to #/compare?runs=<checked ids> (enabled with ≥ 2 checked)
 *   runs-error           message of a failed list refresh or cancel
 *   new-run-form         <form> to submit a curriculum
 *   new-run-json         <textarea> the curriculum as JSON (prefilled with a small example)
 *   new-run-submit       submit button (POST /v1/runs)
 *   new-run-reset        button: put the example back into new-run-json (the text is kept
 *                        after a failed submit, and page.goto to the same #/runs does not
 *                        re-render the page: use this or page.reload())
 *   new-run-error        the API's message on 4xx/5xx (names the field)
 *   new-run-result       after 201: "Submitted <name>" with a link (new-run-link) to the run
 *
 * A run (#/runs/<id>)
 *   run-header           name, status (run-status), id, tags, times
 *   run-title            the run's name
 *   run-status           status pill of the run
 *   run-eta              ETA of the whole run
 *   run-error            the run's error, when it failed
 *   run-cancel           button (only while queued/running)
 *   run-lineage-link     <a href="#/lineage/<id>">
 *   stage-timeline       the curriculum as a timeline (<ol>)
 *   stage-item           <li> per stage, data-stage (name), data-status, data-index
 *     stage-status       status pill
 *     stage-progress     progress bar (data-progress = 0..1)
 *     stage-details      step/iterations, tokens/s, backend, attempts, worker, latest losses
 *   loss-chart           uPlot chart: train + val loss of all stages on one x axis
 *                        (x = stage offset + step); data-points (x values), data-series (2),
 *                        data-boundaries (= number of stages after the first: a dashed line
 *                        where each later stage starts; the first stage's name sits at x = 0)
 *   lr-chart             uPlot chart: learning rate on the same axis
 *   evaluation           the evaluation card (evaluation-empty while none)
 *     evaluation-perplexity  perplexity of the final model (last stage's held-out split)
 *     evaluation-rouge       ROUGE-L mean f / precision / recall
 *     evaluation-per-stage   <table> loss and perplexity per stage
 *     evaluation-samples     the sample outputs; evaluation-sample per output (<li>)
 *     evaluation-qa          <table> held-out questions, references and generated answers
 *   events-table         <table> of stage events; event-row per event (data-type)
 *   events-empty         shown when there are none
 *   checkpoints-table    <table> of checkpoints; checkpoint-row per checkpoint
 *                        (data-checkpoint-id, data-stage, data-step)
 *     checkpoint-aliases   the aliases that point at it
 *     checkpoint-download  button: fetches /v1/checkpoints/<id>/download with the tab's key and
 *                          saves it; checkpoint-download-result says what was saved or why not
 *     checkpoint-play      <a href="#/playground?checkpoint=<id>">
 *   alias-form           <form>: alias-checkpoint (<select>), alias-name (<input>), alias-submit
 *   alias-result         "alias → checkpoint" after PUT /v1/aliases/:name, or the API's error
 *
 * Lineage (#/lineage/<id>)
 *   lineage-graph        cytoscape canvas (breadthfirst, directed); data-nodes, data-edges
 *   lineage-legend       the runs in the graph with their colors; lineage-run-link per run
 *   lineage-nodes        <table> of nodes; lineage-node per node (data-node-id, data-type)
 *   lineage-edges        <table> of edges; lineage-edge per edge (data-from, data-to, data-type)
 *   lineage-truncated    shown when the API cut the graph short
 *
 * Compare (#/compare?runs=a,b)
 *   compare-picker       checkboxes of recent runs (compare-pick per run) + compare-go button
 *   compare-chart        uPlot: train loss of each run, overlaid (data-series = number of runs)
 *   compare-val-chart    uPlot: validation loss of each run, overlaid
 *   compare-table        <table> final metrics; compare-row per run (data-run-id)
 *   compare-differences  <table> config paths that differ; difference-row per path
 *                        (data-path); cells with class "diff" hold the values
 *   compare-no-differences  shown when the curricula are equal
 *
 * Playground (#/playground)
 *   playground-form      <form>
 *   playground-model     <select>: "alias:<name>" or "checkpoint:<id>" options
 *   playground-prompt    <textarea> prompt (completion) or question (answer)
 *   playground-mode      <select> auto|completion|answer
 *   playground-temperature, playground-topk, playground-topp, playground-max-tokens,
 *   playground-samples   number inputs (samples defaults to 5)
 *   playground-submit    button: POST /v1/generate
 *   playground-error     the API's message
 *   playground-output    the outputs (data-count); playground-sample per output (<li>)
 *   playground-stats     tokens/s (playground-speed), seconds, warm, worker, tokens
 */
import { h, replace } from './lib/dom.js';
import { installSignIn } from './lib/signin.js';

/** @typedef {{ path: string[], query: URLSearchParams, navigate: (hash: string) => void }} PageContext */
/** @typedef {(root: HTMLElement, ctx: PageContext) => (void | (() => void))} RenderPage */

/** @type {Record<string, () => Promise<{ render: RenderPage }>>} */
const pages = {
  runs: () => import('./pages/runs.js'),
  run: () => import('./pages/run.js'),
  lineage: () => import('./pages/lineage.js'),
  compare: () => import('./pages/compare.js'),
  playground: () => import('./pages/playground.js'),
};

/**
 * "#/runs/abc?x=1" → { page: "run", path: ["runs", "abc"], query }.
 * @param {string} hash
 */
export function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [pathPart = '', queryPart = ''] = raw.split('?', 2);
  const path = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(queryPart);
  let page = 'not-found';
  if (path.length === 0 || (path[0] === 'runs' && path.length === 1)) page = 'runs';
  else if (path[0] === 'runs' && path.length === 2) page = 'run';
  else if (path[0] === 'lineage' && path.length === 2) page = 'lineage';
  else if (path[0] === 'compare' && path.length === 1) page = 'compare';
  else if (path[0] === 'playground' && path.length === 1) page = 'playground';
  return { page, path, query };
}

const root = /** @type {HTMLElement} */ (document.getElementById('app'));
/** @type {(() => void) | undefined} */
let cleanup;
let generation = 0;

async function route() {
  const { page, path, query } = parseHash(location.hash);
  const mine = ++generation;
  try {
    cleanup?.();
  } catch (error) {
    console.error(error);
  }
  cleanup = undefined;
  root.dataset.page = page;
  root.dataset.state = 'loading';
  for (const link of document.querySelectorAll('nav a[data-page]')) {
    const active =
      /** @type {HTMLElement} */ (link).dataset.page === (page === 'run' || page === 'lineage' ? 'runs' : page);
    link.classList.toggle('active', active);
  }
  const load = pages[page];
  if (!load) {
    root.dataset.state = 'error';
    replace(
      root,
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Not found'),
        h('p', { testid: 'page-error' }, `No page at ${location.hash}. `, h('a', { href: '#/runs' }, 'See the runs.')),
      ),
    );
    return;
  }
  replace(root, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const mod = await load();
    if (mine !== generation) return; // the route changed while the module loaded
    root.replaceChildren();
    const result = mod.render(root, { path, query, navigate: (hash) => (location.hash = hash) });
    cleanup = typeof result === 'function' ? result : undefined;
  } catch (error) {
    console.error(error);
    root.dataset.state = 'error';
    replace(
      root,
      h(
        'div',
        { class: 'notice notice-error', testid: 'page-error' },
        `This page failed to load: ${error instanceof Error ? error.message : String(error)}`,
      ),
    );
  }
}

installSignIn(/** @type {HTMLElement} */ (document.querySelector('header.topbar')), root, () => void route());
window.addEventListener('hashchange', () => void route());
if (!location.hash) history.replaceState(null, '', '#/runs');
void route();
