/**
 * Request validation with TypeBox instead of Fastify's default ajv.
 *
 * Fastify's ajv is configured with `removeAdditional` and `coerceTypes`: an unknown field
 * would vanish silently and `"10"` would become 10, so a typo in a request would be accepted
 * and ignored. Here a wrong type or an unknown field is an error naming the field by its
 * JSON path ("/samples: Expected integer"). Only the query string and URL parameters, which
 * are strings by nature, are converted to the schema's types first; a body never is.
 * Defaults written in a schema are filled in (`Value.Default`) on every part.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { FastifyRouteSchemaDef } from 'fastify/types/schema.js';
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value, type ValueError } from '@sinclair/typebox/value';

const WHERE: Record<string, string> = { querystring: 'query string ', params: 'URL ', headers: 'header ' };

export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const checker = TypeCompiler.Compile(schema);
  const convert = httpPart === 'querystring' || httpPart === 'params';
  return (input: unknown) => {
    let value = Value.Clone(input);
    if (convert) value = Value.Convert(schema, value);
    value = Value.Default(schema, value);
    const first = checker.Errors(value).First();
    if (!first) return { value };
    return { error: new Error(`${WHERE[httpPart ?? ''] ?? ''}${formatError(first)}`) };
  };
};

/** "/stages/0/iterations: Expected integer", with enum and pattern errors spelled out. */
export function formatError(error: ValueError): string {
  return `${error.path || '/'}: ${describe(error)}`;
}

function describe(error: ValueError): string {
  const { schema, value, message } = error;
  const { pattern, description } = schema as { pattern?: string; description?: string };
  if (pattern && typeof value === 'string' && !new RegExp(pattern).test(value))
    return `${JSON.stringify(value)} is not allowed${description ? `: ${description}` : ` (must match ${pattern})`}`;
  const choices = (schema as { anyOf?: { const?: unknown }[] }).anyOf?.map((s) => s.const);
  if (choices && choices.length > 0 && choices.every((c) => typeof c === 'string'))
    return `${JSON.stringify(value)} is not one of ${choices.join(', ')}`;
  if (message === 'Unexpected property') return 'unknown field (not part of this request; check its spelling)';
  if (value === undefined && /Expected required property/.test(message)) return 'required field is missing';
  return message;
}

/** A route whose handler validates its body itself (POST /v1/runs: core's parseCurriculum), schema kept for the docs only. */
export const documentationOnly = () => (value: unknown) => ({ value });

/** For a route whose body is not JSON (uploads): the query string and params are validated, the body schema only documents. */
export const validateAllButBody = (route: FastifyRouteSchemaDef<unknown>) =>
  route.httpPart === 'body' ? documentationOnly() : typeboxValidatorCompiler(route as FastifyRouteSchemaDef<TSchema>);
