/**
 * The validator every route of the app gets, and the text of its 400s, set through Fastify's
 * setters so a plugin can apply them (they used to be constructor options of the gateway's app).
 * The validator never coerces (see ./strict-input.ts) and knows `x-minDecimal`/`x-maxDecimal`;
 * schemas shared with `addSchema` still resolve, as with Fastify's own compiler.
 */
import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyInstance } from 'fastify';
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import { addDecimalKeywords } from './strict-input.js';

/**
 * Never coerce. Union types (`['integer', 'string']` counters) are meant; without allowUnionTypes
 * ajv warns on stderr at start-up.
 */
const CUSTOM_OPTIONS = { coerceTypes: false, removeAdditional: false, allErrors: false, allowUnionTypes: true } as const;

/** "querystring/limit must be <= 10000"; names the extra property where ajv knows it. */
export function formatValidation(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const text = errors
    .map((e) => {
      const extra = (e.params as { additionalProperty?: string }).additionalProperty;
      return `${dataVar}${e.instancePath} ${e.message ?? 'is invalid'}${extra ? `: ${extra}` : ''}`;
    })
    .join('; ');
  return new Error(text);
}

/** Applies the validator and the 400 text to `app` and every context registered in it from now on. */
export function registerValidation(app: FastifyInstance): void {
  // One pool per app: the factory keeps a compiler per set of shared schemas.
  const build = AjvCompiler();
  app.setSchemaController({
    compilersFactory: {
      // The server's own `ajv` option is ignored: these rules are the gateway's, whatever the host passed.
      buildValidator: (externalSchemas) => build(externalSchemas as Record<string, object>, { customOptions: { ...CUSTOM_OPTIONS }, onCreate: addDecimalKeywords }),
    },
  });
  app.setSchemaErrorFormatter(formatValidation);
}
