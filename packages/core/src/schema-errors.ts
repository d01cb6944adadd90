/**
 * The one wording of schema errors, for everything checked against a TypeBox schema: a
 * curriculum (`miniglm train`, POST /v1/runs) and the API's request parts. A message names
 * the field by its JSON path, then says what is wrong with it in words a user can act on:
 * "/stages/0/iterations: Expected integer", "/kind: "x" is not one of pretrain, sft".
 */
import type { ValueError } from '@sinclair/typebox/value';

export interface SchemaErrorWording {
  /**
   * Say "unknown field (...)" and "required field is missing" where TypeBox says
   * "Unexpected property" and "Expected required property". The API words its request
   * parts this way; curricula keep TypeBox's words, which `miniglm train` has always printed.
   */
  fieldWords?: boolean;
}

/** "<JSON path>: <what is wrong>"; the path of the whole value is "/". */
export function formatSchemaError(error: ValueError, wording: SchemaErrorWording = {}): string {
  return `${error.path || '/'}: ${describe(error, wording)}`;
}

function describe(error: ValueError, wording: SchemaErrorWording): string {
  const { schema, value, message } = error;
  // TypeBox would quote the regular expression: the schema's description says it in words.
  const { pattern, description } = schema as { pattern?: string; description?: string };
  if (pattern && typeof value === 'string' && !new RegExp(pattern).test(value))
    return `${JSON.stringify(value)} is not allowed${description ? `: ${description}` : ` (must match ${pattern})`}`;
  // A union of string literals is an enum, for which TypeBox says only "Expected union value".
  const choices = (schema as { anyOf?: { const?: unknown }[] }).anyOf?.map((s) => s.const);
  if (choices && choices.length > 0 && choices.every((c) => typeof c === 'string'))
    return `${JSON.stringify(value)} is not one of ${choices.join(', ')}`;
  if (wording.fieldWords) {
    if (message === 'Unexpected property') return 'unknown field (not part of this request; check its spelling)';
    if (value === undefined && /Expected required property/.test(message)) return 'required field is missing';
  }
  return message;
}
