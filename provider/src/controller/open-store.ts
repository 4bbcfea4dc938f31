// Which store `--db` names: a PostgreSQL URL is a database several controllers share, anything
// else an SQLite file of this controller's own. Each store is loaded only when chosen (pg's
// modules, node:sqlite's experimental warning).
import type { ControllerStore } from './store.ts';

/** True for the URLs libpq and pg take: postgres:// and postgresql://. */
export const isPostgresUrl = (db: string): boolean => /^postgres(ql)?:\/\//i.test(db);

export async function openStore(db: string): Promise<ControllerStore> {
  if (isPostgresUrl(db)) {
    const { openPostgresStore } = await import('./store-postgres.ts');
    return openPostgresStore(db);
  }
  const { openSqliteStore } = await import('./store-sqlite.ts');
  return openSqliteStore(db);
}
