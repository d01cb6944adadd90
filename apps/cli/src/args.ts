/** Small helpers over node:util parseArgs, so every command reports bad flags the same way. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.ts';
import type { DecodeWeights } from '@miniglm/model';

export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: T,
  help: string,
) {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(help);
    process.exit(0);
  }
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values;
  } catch (error) {
    throw new UsageError(`${command}: ${(error as Error).message.split('\n')[0]} (see miniglm ${command} --help)`);
  }
}

/** A numeric flag, checked: integer and bounds, with the flag's name in the error. */
export function numberFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  { integer = false, min = -Infinity, max = Infinity }: { integer?: boolean; min?: number; max?: number } = {},
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${value}"`);
  if (integer && !Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got ${value}`);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${value}`);
  return n;
}

export function requireFlag<T>(name: string, value: T | undefined): T {
  if (value === undefined || value === '') throw new UsageError(`missing --${name}`);
  return value;
}

/** --weights: the decoding weights, or undefined for the batched forward pass. */
export function weightsFlag(value: string | undefined): DecodeWeights | undefined {
  if (value === undefined) return undefined;
  if (value === 'float32' || value === 'float16' || value === 'int8') return value;
  throw new UsageError(`--weights must be float32, float16 or int8 (got "${value}")`);
}
