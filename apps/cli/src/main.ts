/**
 * `miniglm`: local work with no services (prepare datasets, train a curriculum, sample,
 * evaluate, preview how an SFT sample is tokenized and masked) and the training service
 * (run the API and workers, submit, list, watch and compare runs, and the demo of it all).
 */
import { describeFailure, UsageError } from './errors.ts';

const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => Promise<void> }> = {
  prepare: {
    summary: 'tokenize and split the datasets of a curriculum',
    run: async (a) => (await import('./commands/prepare.ts')).prepare(a),
  },
  train: {
    summary: 'train every stage of a curriculum, each from the previous checkpoint',
    run: async (a) => (await import('./commands/train.ts')).train(a),
  },
  sample: {
    summary: 'generate text (or answers) from a checkpoint',
    run: async (a) => (await import('./commands/sample.ts')).sample(a),
  },
  eval: {
    summary: 'perplexity and ROUGE-L of a checkpoint on held-out data',
    run: async (a) => (await import('./commands/eval.ts')).evaluate(a),
  },
  demo: {
    summary: 'the whole service on this machine: train the demo curriculum and a variant, compare them',
    run: async (a) => (await import('./commands/demo.ts')).demo(a),
  },
  api: {
    summary: 'run the REST API of the training service',
    run: async (a) => (await import('./commands/api.ts')).apiCommand(a),
  },
  submit: {
    summary: 'send a curriculum to a running API',
    run: async (a) => (await import('./commands/submit.ts')).submit(a),
  },
  runs: {
    summary: "list a service's runs (runs delete <id>: delete one)",
    run: async (a) => (await import('./commands/runs.ts')).runs(a),
  },
  watch: { summary: 'follow a run until it ends', run: async (a) => (await import('./commands/watch.ts')).watch(a) },
  compare: {
    summary: 'compare runs: final metrics and the config fields that differ',
    run: async (a) => (await import('./commands/compare.ts')).compare(a),
  },
  keys: {
    summary: 'create, list and revoke API keys (in the database, no API needed)',
    run: async (a) => (await import('./commands/keys.ts')).keys(a),
  },
  worker: {
    summary: 'run a worker of the training service (prepare, train, evaluate, generate)',
    run: async (a) => (await import('./commands/worker.ts')).worker(a),
  },
  'sft-preview': {
    summary: 'show x, y and the loss mask of one Q&A sample',
    run: async (a) => (await import('./commands/sft-preview.ts')).sftPreview(a),
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return `usage: miniglm <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun "miniglm <command> --help" for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(', ')}`);
  await command.run(rest);
  return 0;
}

try {
  const code = await main(process.argv.slice(2));
  // A command may have set its own status already (train: 130 when interrupted); keep it.
  if (!process.exitCode) process.exitCode = code;
} catch (error) {
  console.error(`miniglm: error: ${describeFailure(error)}`);
  process.exitCode = 1;
}
