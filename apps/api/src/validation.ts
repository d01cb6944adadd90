/**
 * Request validation with TypeBox instead of Fastify's default ajv.
 *
 * Fastify's ajv is configured with `removeAdditional` and `coerceTypes`: an unknown field
 * would vanish silently and `"10"` would become 10, so a typo in a request would be accepted
 * and ignored. Here a wrong type or an unknown field is an error naming the field by its
 * JSON path ("/samples: Expected integer"), worded by core's formatSchemaError as a
 * curriculum's errors are. Only the query string and URL parameters, which are strings by
 * nature, are converted to the schema's types first; a body never is.
 * Defaults written in a schema are filled in (`Value.Default`) on every part.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { FastifyRouteSchemaDef } from 'fastify/types/schema.js';
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { formatSchemaError } from '@miniglm/core';

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
    return { error: new Error(`${WHERE[httpPart ?? ''] ?? ''}${formatSchemaError(first, { fieldWords: true })}`) };
  };
};

/** A route whose handler validates its body itself (POST /v1/runs: core's parseCurriculum), schema kept for the docs only. */
export const documentationOnly = () => (value: unknown) => ({ value });

/** For a route whose body is not JSON (uploads): the query string and params are validated, the body schema only documents. */
export const validateAllButBody = (route: FastifyRouteSchemaDef<unknown>) =>
  route.httpPart === 'body' ? documentationOnly() : typeboxValidatorCompiler(route as FastifyRouteSchemaDef<TSchema>);
