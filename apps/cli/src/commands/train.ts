/**
 * `miniglm train --config curriculum.yaml`: every stage in one process, each continuing from
 * the previous stage's checkpoint, with a progress bar per stage, then evaluation.
 * Interrupting (Ctrl-C) writes a checkpoint; the same command later continues from it.
 */
import path from 'node:path';
import { loadCurriculumFile, runCurriculum, type RunSummary } from '@miniglm/core';
import { parseCommandArgs, requireFlag } from '../args.ts';
import { TrainingError } from '../errors.ts';
import { StageProgress } from '../progress.ts';

const HELP = `usage: miniglm train --config FILE [--out DIR] [--data-dir DIR] [--backend NAME]

  --config    curriculum file (YAML or JSON; the schema the REST API accepts)
  --out       run folder (default runs/<curriculum name>); rerunning continues it
  --data-dir  prepared datasets, shared between runs (default <out>/../.datasets)
  --backend   wasm | cpu | tensorflow | tensorflow-gpu (default: best available)`;

export async function train(argv: string[]): Promise<void> {
  const f = parseCommandArgs(
    'train',
    argv,
    {
      config: { type: 'string' },
      out: { type: 'string' },
      'data-dir': { type: 'string' },
      backend: { type: 'string' },
    },
    HELP,
  );
  const file = requireFlag('config', f.config);
  const curriculum = await loadCurriculumFile(file);
  const outDir = f.out ?? path.join('runs', curriculum.name);

  const progress = new StageProgress();
  let stopRequested = false;
  const onSignal = () => {
    if (stopRequested) process.exit(130); // a second Ctrl-C: give up at once
    stopRequested = true;
    progress.note('stopping after this iteration (writing a checkpoint) ...');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const summary = await runCurriculum(curriculum, {
    outDir,
    baseDir: path.dirname(path.resolve(file)),
    dataDir: f['data-dir'],
    backend: f.backend,
    shouldStop: () => stopRequested,
    events: {
      onMessage: (m) => progress.note(m),
      onStageStart: (stage, index, fromStep, backendChange) => {
        if (backendChange) console.log(`stage ${stage.name}: ${backendChange}`);
        progress.start(stage, index, curriculum.stages.length, fromStep);
      },
      onMetrics: (_, m) => progress.update(m),
      onStageEnd: (_, outcome) => progress.finish(outcome),
    },
  }).finally(() => progress.stop());
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  printSummary(summary, outDir);
  if (summary.status === 'stopped') {
    console.log(`stopped; run the same command again to continue from the last checkpoint`);
    process.exitCode = 130;
  }
  if (summary.status === 'failed') {
    const failed = summary.stages.find((s) => s.status === 'diverged');
    throw new TrainingError(`stage ${failed?.name}: ${failed?.message ?? 'failed'}`);
  }
}

function printSummary(s: RunSummary, outDir: string): void {
  const fmt = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(4));
  console.log(
    `\nrun ${s.name}: ${s.status} in ${s.seconds.toFixed(0)} s on ${s.backend}, ${s.params.toLocaleString('en-US')} parameters (${s.tokenizer.name}, vocabulary ${s.tokenizer.vocabSize})`,
  );
  console.log(
    `${'stage'.padEnd(14)}${'kind'.padEnd(10)}${'steps'.padStart(7)}${'train'.padStart(10)}${'val'.padStart(10)}  checkpoint`,
  );
  for (const st of s.stages) {
    console.log(
      `${st.name.padEnd(14)}${st.kind.padEnd(10)}${String(st.steps).padStart(7)}${fmt(st.trainLoss).padStart(10)}${fmt(st.valLoss).padStart(10)}  ${st.checkpoint ?? '-'}`,
    );
  }
  const ev = s.evaluation;
  if (!ev) return;
  console.log(
    `\nperplexity (held-out): ${ev.perplexity.map((p) => `${p.stage} ${p.perplexity.toFixed(2)}`).join(', ')}`,
  );
  if (ev.rouge) {
    const r = ev.rouge.mean;
    console.log(
      `ROUGE-L on ${ev.rouge.pairs} held-out ${ev.rouge.stage} questions: P ${r.precision.toFixed(3)} R ${r.recall.toFixed(3)} F ${r.f.toFixed(3)}${ev.rouge.exact === undefined ? '' : `; ${ev.rouge.exact} answered exactly`}`,
    );
    for (const item of ev.rouge.items.slice(0, 3))
      console.log(`  Q: ${item.question}\n     reference: ${item.reference}\n     model:     ${item.generated}`);
  }
  for (const sample of ev.samples) {
    console.log(
      `\n${sample.mode === 'answer' ? 'question' : 'prompt'}: ${sample.prompt || '(empty)'}   [${sample.tokensPerSec.toFixed(0)} tokens/s]`,
    );
    sample.outputs.forEach((o, i) =>
      console.log(`  [${i + 1}] ${sample.mode === 'completion' ? sample.prompt : ''}${o.replace(/\n/g, ' / ')}`),
    );
  }
  console.log(
    `\nfiles: ${path.join(outDir, 'run.json')}, ${path.join(outDir, 'evaluation.json')}, ${path.join(outDir, 'stages')}/<stage>/{model.ckpt,metrics.jsonl}`,
  );
}
