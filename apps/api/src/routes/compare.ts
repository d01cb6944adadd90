/** GET /v1/compare: runs side by side (see views/compare.ts). */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { CompareQuery } from '../schemas.ts';
import { compareRuns, parseRunList } from '../views/compare.ts';

export function compareRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: CompareQuery }>(
    '/v1/compare',
    {
      schema: {
        tags: ['runs'],
        summary: 'Compare 2 to 20 runs: results, differing settings, aligned loss histories',
        querystring: CompareQuery,
      },
    },
    async (request) => compareRuns(ctx.prisma, parseRunList(request.query.runs)),
  );
}
