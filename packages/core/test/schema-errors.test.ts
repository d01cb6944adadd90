/** The one wording of schema errors, shared by curricula and the API's request parts. */
import { Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { formatSchemaError, type SchemaErrorWording } from '../src/index.ts';

const Example = Type.Object(
  {
    name: Type.String({ maxLength: 8, pattern: '^[a-z]+$', description: 'lower-case letters' }),
    code: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
    kind: Type.Optional(Type.Union([Type.Literal('pretrain'), Type.Literal('sft')])),
    steps: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

function firstError(schema: TSchema, value: unknown, wording?: SchemaErrorWording): string | undefined {
  const first = Value.Errors(schema, value).First();
  return first && formatSchemaError(first, wording);
}

describe('formatSchemaError', () => {
  it('names the field by its JSON path, "/" for the whole value', () => {
    expect(firstError(Example, { name: 'a', steps: 1.5 })).toBe('/steps: Expected integer');
    expect(firstError(Example, 'text')).toBe('/: Expected object');
  });

  it('says a pattern in the words of its description, or quotes it when there is none', () => {
    expect(firstError(Example, { name: 'A b' })).toBe('/name: "A b" is not allowed: lower-case letters');
    expect(firstError(Example, { name: 'a', code: 'x' })).toBe('/code: "x" is not allowed (must match ^[0-9]+$)');
    // A value the pattern accepts fails for another reason, which TypeBox names.
    expect(firstError(Example, { name: 'abcdefghij' })).toMatch(/^\/name: Expected string length less or equal to 8/);
  });

  it('lists the choices of a union of strings', () => {
    expect(firstError(Example, { name: 'a', kind: 'rl' })).toBe('/kind: "rl" is not one of pretrain, sft');
  });

  it("keeps TypeBox's words for unknown and missing fields unless asked for the API's", () => {
    expect(firstError(Example, { name: 'a', colour: 1 })).toBe('/colour: Unexpected property');
    expect(firstError(Example, {})).toMatch(/^\/name: Expected required property/);
    const api = { fieldWords: true };
    expect(firstError(Example, { name: 'a', colour: 1 }, api)).toBe(
      '/colour: unknown field (not part of this request; check its spelling)',
    );
    expect(firstError(Example, {}, api)).toBe('/name: required field is missing');
  });
});
