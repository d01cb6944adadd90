/**
 * `miniglm prepare --config curriculum.yaml`: tokenize and split every stage's corpus ahead
 * of training (train does this itself when needed); prints what each dataset holds.
 */
import path from 'node:path';
import { loadCurriculumFile, prepareDatasets } from '@miniglm/core';
import { createTokenizer } from '@miniglm/data';
import { parseCommandArgs, requireFlag } from '../args.ts';

const HELP = `usage: miniglm prepare --config FILE [--data-dir DIR]

  --config    curriculum file (YAML or JSON)
  --data-dir  where prepared datasets go (default runs/.datasets); reused when unchanged`;

export async function prepare(argv: string[]): Promise<void> {
  const f = parseCommandArgs('prepare', argv, { config: { type: 'string' }, 'data-dir': { type: 'string' } }, HELP);
  const file = requireFlag('config', f.config);
  const curriculum = await loadCurriculumFile(file);
  const { tokenizer, datasets } = await prepareDatasets(curriculum, {
    dataDir: f['data-dir'] ?? path.join('runs', '.datasets'),
    baseDir: path.dirname(path.resolve(file)),
    onProgress: (m) => console.log(m),
  });
  console.log(
    `tokenizer ${tokenizer.name}, vocabulary ${createTokenizer(tokenizer).vocabSize}${tokenizer.vocab ? ' (compact)' : ''}`,
  );
  for (const d of datasets) {
    const m = d.manifest;
    const counts =
      m.kind === 'pretrain'
        ? `${m.counts.documents.train}/${m.counts.documents.val} documents, ${m.counts.tokens.train}/${m.counts.tokens.val} tokens (train/val)`
        : `${m.counts.pairs.train}/${m.counts.pairs.val} Q&A rows of ${m.blockSize} tokens (train/val), ${m.counts.truncated.train + m.counts.truncated.val} truncated, ${m.counts.skippedQuestionTooLong} skipped`;
    console.log(`${d.stage}: ${m.kind} from ${m.source}: ${counts}${d.reused ? ' [reused]' : ''}\n  ${d.dir}`);
  }
}
