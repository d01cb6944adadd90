/**
 * A run may start from a checkpoint (initFrom) only when the checkpoint's weights fit the
 * model its curriculum builds: the same architecture and the same tokenizer. One check for
 * both places that know a checkpoint: a file's header (miniglm train) and the stored
 * curriculum of the run that wrote it (submitRun).
 */
import type { Curriculum } from './curriculum.ts';

/** The fields that decide whether weights fit a model. */
const ARCHITECTURE = ['kind', 'layers', 'heads', 'dim', 'blockSize'] as const;

/**
 * Why `curriculum` cannot start from a checkpoint with this model and tokenizer, or
 * undefined. `where` names the checkpoint in the message. A field that either side leaves
 * unset (an LSTM has no heads) is not compared.
 */
export function initFromMismatch(
  curriculum: Curriculum,
  checkpoint: { model: { [K in (typeof ARCHITECTURE)[number]]?: unknown }; tokenizer: string },
  where: string,
): string | undefined {
  for (const key of ARCHITECTURE) {
    const want = curriculum.model[key];
    const have = checkpoint.model[key];
    if (want !== undefined && have !== undefined && want !== have)
      return `/model/${key}: ${String(want)} differs from the initFrom checkpoint's ${String(have)} (${where})`;
  }
  if (checkpoint.tokenizer !== curriculum.tokenizer.name)
    return `/tokenizer/name: ${curriculum.tokenizer.name} differs from the initFrom checkpoint's ${checkpoint.tokenizer}`;
  return undefined;
}
