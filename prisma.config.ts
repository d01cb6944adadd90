// Prisma CLI configuration (Prisma 6.19). The CLI's schema engine runs in JavaScript
// (`engine: "js"`) through a driver adapter, so no native engine has to be downloaded — the
// host of Prisma's binaries is not reachable from every machine this project builds on.
//
// The adapter is an in-memory PGlite on purpose: this config exists to generate the client
// and to *author* and *check* migrations (`node prisma/new-migration.mjs <name> | --check`
// runs `prisma migrate diff` here: it replays prisma/migrations into a throw-away database
// and diffs that against schema.prisma). It never points at a real database: the JS schema engine
// fails against a Postgres server (prisma/orm issue 27403, "Column type 'name' could not be
// deserialized"), and applying migrations is the job of packages/core/src/db/migrate.ts, for
// Postgres and PGlite alike.
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { defineConfig } from 'prisma/config';

// No native engine is used (engine "js" here, engineType "client" in the generated client),
// but the 6.x CLI still looks for engine files and downloads the missing ones. Pointing
// these at any existing file stops that; a value already set by the caller wins.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath;
process.env.PRISMA_QUERY_ENGINE_LIBRARY ??= process.execPath;
process.env.PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING ??= '1';
process.env.CHECKPOINT_DISABLE ??= '1'; // Prisma's version-check ping: no network here either
// schema.prisma must name a url, which the CLI validates before it asks for the adapter;
// the adapter below is what is actually used.
process.env.DATABASE_URL ??= 'postgresql://unused.invalid/unused';

type Connection = Awaited<ReturnType<PrismaPGlite['connect']>>;
/** What `adapter` must return; pglite-prisma-adapter 0.6 is typed against Prisma 6.10's interfaces, hence the cast below. */
type AdapterOption = Extract<Parameters<typeof defineConfig>[0], { engine: 'js' }>['adapter'];

/**
 * The schema engine replays a migration.sql through `executeRaw` with no parameters: one
 * string of many statements. pglite-prisma-adapter 0.6 sends that as a prepared statement,
 * which Postgres refuses ("cannot insert multiple commands into a prepared statement"), so
 * `migrate dev` and `migrate diff --from-migrations` fail once a migration exists. Such
 * parameterless calls go through PGlite's simple-query `exec` instead.
 */
function scriptAware(connection: Connection, db: PGlite): Connection {
  return new Proxy(connection, {
    get(target, key, receiver) {
      if (key === 'executeRaw') {
        return async (query: Parameters<Connection['executeRaw']>[0]) => {
          if (query.args.length > 0) return target.executeRaw(query);
          const results = await db.exec(query.sql);
          return results.reduce((n, r) => n + (r.affectedRows ?? 0), 0);
        };
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function pgliteFactory(): Promise<object> {
  const main = new PGlite('memory://');
  const factory = new PrismaPGlite(main);
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => scriptAware(await factory.connect(), main),
    connectToShadowDb: async () => {
      const shadow = new PGlite('memory://');
      return scriptAware(await new PrismaPGlite(shadow).connect(), shadow);
    },
  };
}

export default defineConfig({
  engine: 'js',
  experimental: { adapter: true },
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  adapter: pgliteFactory as unknown as AdapterOption,
});
