/** GET /v1/compare: runs side by side (see views/compare.ts). */
import { ownerScope } from '../auth.ts';
import type { Api, ApiContext } from '../context.ts';
import { CompareView, errors } from '../responses.ts';
import { CompareQuery } from '../schemas.ts';
import { compareRuns, parseRunList } from '../views/compare.ts';

export function compareRoutes(app: Api, ctx: ApiContext): void {
  app.get(
    '/v1/compare',
    {
      schema: {
        tags: ['runs'],
        summary:
          'Compare 2 to 20 runs: results, differing settings, aligned loss histories (downsampled to ?maxPoints=, default 1000 rows)',
        querystring: CompareQuery,
        response: { 200: CompareView, ...errors(400, 404) },
      },
    },
    async (request) =>
      compareRuns(
        ctx.prisma,
        ctx.db.sql,
        parseRunList(request.query.runs),
        request.query.maxPoints,
        ownerScope(request),
      ),
  );
}
