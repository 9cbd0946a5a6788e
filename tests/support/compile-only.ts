// A Kysely that compiles and never connects (its driver is Kysely's dummy):
// for tests that read the SQL text of a fragment, such as the data map's
// anonymisation or the audit trail's canonical columns.
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';

/**
 * @example
 * anonymiseSet({ body: 'redact' }, 'id').compile(compileOnly).sql
 */
export const compileOnly = new Kysely<unknown>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});
