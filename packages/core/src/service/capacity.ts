/**
 * What one run may ask of the service, checked when it is submitted: a run the service cannot
 * carry is a 400 that names the field and the numbers, instead of a database that overflows
 * (`params` is a 32-bit column), grows without bound (a checkpoint every step), an evaluation
 * that generates for days, or a worker that dies in its backend hours later.
 *
 * Limits per run, from the environment, with defaults sized for a small team's service:
 *
 *   MINIGLM_MAX_PARAMETERS        1e9   the model's parameters (counted with the smallest vocabulary
 *                                       its tokenizer can have: a compact one is known only once
 *                                       the data is prepared)
 *   MINIGLM_MAX_TRAINING_TOKENS   1e11  over all stages: iterations × batchSize × gradAccum × blockSize
 *   MINIGLM_MAX_CHECKPOINTS       1000  checkpoints one stage writes (iterations / checkpointEvery)
 *   MINIGLM_MAX_EVAL_TOKENS       1e6   tokens the evaluation generates:
 *                                       (rougeSamples + prompts × samples) × maxNewTokens
 *
 * A key's own limits (columns of ApiKey, set by `miniglm keys create|set --max-parameters N
 * --max-training-tokens N --max-checkpoints N --max-eval-tokens N`) replace these for the runs
 * it submits; null means the service's. A key's own may be above the service's: an admin sets
 * it deliberately, for a key trusted with larger runs, and the service-wide values are only
 * defaults (what no worker can carry is refused anyway, by the memory check below).
 *
 * And capacity: each worker advertises the memory its backend can give training
 * (advertiseWorker, refreshed while it runs); a stage whose model, optimizer state and
 * activations need more than the largest worker has is refused. The estimate is a lower bound
 * (the smallest vocabulary again), so nothing that fits is refused; the worker checks again
 * with the real vocabulary before it trains.
 */
import type { Redis } from 'ioredis';
import type { PrismaClient } from '../db/index.ts';
import { CHAR_OFFSET, createTokenizer } from '@miniglm/data';
import { countParameters, estimateTrainingMemory, formatBytes, resolveModelConfig } from '@miniglm/model/sizing';
import { evaluationOf, type Curriculum } from '../curriculum.ts';
import { SettingError } from './settings.ts';

export interface RunLimits {
  parameters: number;
  trainingTokens: number;
  checkpointsPerStage: number;
  evaluationTokens: number;
}

export const DEFAULT_RUN_LIMITS: RunLimits = {
  parameters: 1e9,
  trainingTokens: 1e11,
  checkpointsPerStage: 1000,
  evaluationTokens: 1e6,
};

const LIMIT_ENV: Record<keyof RunLimits, string> = {
  parameters: 'MINIGLM_MAX_PARAMETERS',
  trainingTokens: 'MINIGLM_MAX_TRAINING_TOKENS',
  checkpointsPerStage: 'MINIGLM_MAX_CHECKPOINTS',
  evaluationTokens: 'MINIGLM_MAX_EVAL_TOKENS',
};

/** A key's own per-run limits as stored (ApiKey columns); null: the service's. */
export interface KeyRunLimits {
  maxParameters: number | null;
  maxTrainingTokens: number | null;
  maxCheckpoints: number | null;
  maxEvalTokens: number | null;
}

/** Which ApiKey column holds a key's own value of each limit. */
export const RUN_LIMIT_COLUMN: Record<keyof RunLimits, keyof KeyRunLimits> = {
  parameters: 'maxParameters',
  trainingTokens: 'maxTrainingTokens',
  checkpointsPerStage: 'maxCheckpoints',
  evaluationTokens: 'maxEvalTokens',
};

/** The `miniglm keys create|set` options that set a key's own limits. */
export const RUN_LIMIT_OPTION: Record<keyof RunLimits, string> = {
  parameters: '--max-parameters',
  trainingTokens: '--max-training-tokens',
  checkpointsPerStage: '--max-checkpoints',
  evaluationTokens: '--max-eval-tokens',
};

/** Whose a limit is and what sets it, as a refusal names them. */
export type LimitSource = (limit: keyof RunLimits) => { whose: string; setBy: string };

/** The service's limits, set by the environment. */
export const serviceLimits: LimitSource = (limit) => ({ whose: "this service's", setBy: LIMIT_ENV[limit] });

/**
 * A limit as text (a command-line option): a whole number from 1 (checkpoints: an Int column)
 * or a message naming `source`. "1e9" is read as a number, as the environment's values are.
 */
export function parseRunLimit(
  limit: keyof RunLimits,
  text: string,
  source: string,
): { ok: true; value: number } | { ok: false; error: string } {
  const n = Number(text);
  const max = limit === 'checkpointsPerStage' ? 2 ** 31 - 1 : Number.MAX_SAFE_INTEGER;
  return text.trim() !== '' && Number.isSafeInteger(n) && n >= 1 && n <= max
    ? { ok: true, value: n }
    : { ok: false, error: `${source} must be a whole number from 1 to ${max}, got "${text}"` };
}

/**
 * The limits of a run the owner submits: its key's own where set, the service's elsewhere,
 * and the words a refusal uses for each. Keyless (no owner): the service's.
 */
export async function ownerRunLimits(
  db: Pick<PrismaClient, 'apiKey'>,
  ownerId: string | null,
  defaults: RunLimits,
): Promise<{ limits: RunLimits; source: LimitSource }> {
  if (ownerId === null) return { limits: defaults, source: serviceLimits };
  const key = await db.apiKey.findUnique({
    where: { id: ownerId },
    select: { maxParameters: true, maxTrainingTokens: true, maxCheckpoints: true, maxEvalTokens: true },
  });
  const own = (limit: keyof RunLimits) => {
    const value = key?.[RUN_LIMIT_COLUMN[limit]];
    return value === null || value === undefined ? undefined : Number(value);
  };
  const limits = { ...defaults };
  for (const limit of Object.keys(RUN_LIMIT_COLUMN) as (keyof RunLimits)[])
    limits[limit] = own(limit) ?? defaults[limit];
  const source: LimitSource = (limit) =>
    own(limit) === undefined
      ? serviceLimits(limit)
      : { whose: `key ${ownerId}'s own`, setBy: `miniglm keys set ${ownerId} ${RUN_LIMIT_OPTION[limit]}` };
  return { limits, source };
}

/** The limits the environment sets, the defaults elsewhere; a value that is no positive number is an error. */
export function runLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): RunLimits {
  const limits = { ...DEFAULT_RUN_LIMITS };
  for (const key of Object.keys(LIMIT_ENV) as (keyof RunLimits)[]) {
    const raw = env[LIMIT_ENV[key]];
    if (raw === undefined || raw === '') continue;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0)
      throw new SettingError(`${LIMIT_ENV[key]} must be a positive number (got "${raw}")`);
    limits[key] = value;
  }
  return limits;
}

/** What a worker tells the service about itself. */
export interface WorkerAd {
  id: string;
  backend: string;
  /** The most memory training may take there (memoryLimit of its backend). */
  memoryBytes: number;
}

/** Everything submitRun needs to apply the limits. */
export interface Capacity {
  limits: RunLimits;
  /** The workers that advertised themselves recently; undefined when that cannot be known now. */
  workers(): Promise<WorkerAd[] | undefined>;
}

/**
 * The first limit the curriculum exceeds, as a message naming the field, the limit and what
 * sets it (`source`: the service's by default); undefined when it fits.
 */
export function checkRunLimits(
  c: Curriculum,
  limits: RunLimits,
  workers: WorkerAd[] = [],
  source: LimitSource = serviceLimits,
): string | undefined {
  const model = smallestModel(c);
  const parameters = countParameters(model);
  if (parameters > limits.parameters)
    return (
      `/model: this model has at least ${count(parameters)} parameters, more than ${source('parameters').whose} limit of ` +
      `${count(limits.parameters)} (${source('parameters').setBy}); use fewer layers or a smaller dim`
    );

  const tokens = c.stages.map((s) => s.iterations * s.batchSize * s.gradAccum * c.model.blockSize);
  const total = tokens.reduce((a, b) => a + b, 0);
  if (total > limits.trainingTokens) {
    const largest = tokens.indexOf(Math.max(...tokens));
    return (
      `/stages/${largest}/iterations: the stages train on ${count(total)} tokens (iterations × batchSize × ` +
      `gradAccum × blockSize), more than ${source('trainingTokens').whose} limit of ${count(limits.trainingTokens)} per run ` +
      `(${source('trainingTokens').setBy}); stage "${c.stages[largest]!.name}" alone takes ${count(tokens[largest]!)}`
    );
  }

  for (const [i, s] of c.stages.entries()) {
    const checkpoints = Math.ceil(s.iterations / s.checkpointEvery);
    if (checkpoints > limits.checkpointsPerStage)
      return (
        `/stages/${i}/checkpointEvery: ${s.iterations} iterations with a checkpoint every ${s.checkpointEvery} ` +
        `write ${count(checkpoints)} checkpoints, more than ${source('checkpointsPerStage').whose} limit of ` +
        `${count(limits.checkpointsPerStage)} per stage (${source('checkpointsPerStage').setBy}); checkpointEvery must be at least ` +
        `${Math.ceil(s.iterations / limits.checkpointsPerStage)}`
      );
  }

  const e = evaluationOf(c);
  // Without prompts of its own the evaluation samples two held-out questions (or one empty prompt).
  const prompts = Math.max(e.prompts?.length ?? 0, 2);
  const evaluationTokens = (e.rougeSamples + prompts * e.samples) * e.maxNewTokens;
  if (evaluationTokens > limits.evaluationTokens)
    return (
      `/evaluation/maxNewTokens: the evaluation would generate up to ${count(evaluationTokens)} tokens ` +
      `((rougeSamples + prompts × samples) × maxNewTokens), more than ${source('evaluationTokens').whose} limit of ` +
      `${count(limits.evaluationTokens)} (${source('evaluationTokens').setBy})`
    );

  return checkFitsAWorker(c, model, workers);
}

/** A stage that no advertised worker has the memory to train; no workers known: not checked. */
function checkFitsAWorker(c: Curriculum, model: ReturnType<typeof smallestModel>, workers: WorkerAd[]) {
  if (workers.length === 0) return undefined;
  for (const [i, s] of c.stages.entries()) {
    const need = workers.map((w) => estimateTrainingMemory(model, s.batchSize, w.backend).total);
    if (workers.some((w, j) => need[j]! <= w.memoryBytes)) continue;
    const largest = workers.reduce((a, b) => (b.memoryBytes > a.memoryBytes ? b : a));
    const needOnLargest = need[workers.indexOf(largest)]!;
    return (
      `/stages/${i}/batchSize: training stage "${s.name}" with batchSize ${s.batchSize} and blockSize ` +
      `${c.model.blockSize} needs at least ${formatBytes(needOnLargest)} (weights, gradients, AdamW's moments ` +
      `and activations), more than any worker has: the largest, ${largest.id}, gives training ` +
      `${formatBytes(largest.memoryBytes)} (${largest.backend}); use a smaller batchSize (gradAccum keeps the ` +
      `effective batch), blockSize or model`
    );
  }
  return undefined;
}

/** The curriculum's model with the smallest vocabulary its tokenizer can have. */
function smallestModel(c: Curriculum) {
  // A compact vocabulary holds at least the 256 byte fallbacks, eot and sep.
  const vocabSize = c.tokenizer.compactVocab ? CHAR_OFFSET : createTokenizer(c.tokenizer.name).vocabSize;
  return resolveModelConfig({ ...c.model, vocabSize });
}

const count = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });

// ---------------------------------------------------------------------------------------------
// Workers' advertisements: one hash per service (its key prefix), a field per worker.

/** An advertisement older than this is a worker that stopped (killed, or its machine gone). */
export const WORKER_AD_TTL_MS = 90_000;

const adsKey = (prefix: string) => `${prefix}:workers`;

/** Writes (or refreshes) a worker's advertisement; the worker repeats it well within the TTL. */
export async function advertiseWorker(redis: Redis, prefix: string, ad: WorkerAd): Promise<void> {
  await redis.hset(adsKey(prefix), ad.id, JSON.stringify({ ...ad, at: Date.now() }));
}

export async function withdrawWorker(redis: Redis, prefix: string, id: string): Promise<void> {
  await redis.hdel(adsKey(prefix), id);
}

/** The workers that advertised within the TTL; undefined when Redis does not answer in time. */
export async function readWorkerAds(redis: Redis, prefix: string, timeoutMs = 1000): Promise<WorkerAd[] | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
  try {
    const all = await Promise.race([redis.hgetall(adsKey(prefix)).catch(() => undefined), timeout]);
    if (!all) return undefined;
    const fresh = Date.now() - WORKER_AD_TTL_MS;
    return Object.values(all)
      .map((v) => JSON.parse(v) as WorkerAd & { at: number })
      .filter((ad) => ad.at >= fresh)
      .map(({ id, backend, memoryBytes }) => ({ id, backend, memoryBytes }));
  } finally {
    clearTimeout(timer);
  }
}
