// Which store a --db names: a PostgreSQL URL (shared by several controllers) or a SQLite file.
import { openSqliteStore } from './store-sqlite.ts';
import type { ControllerStore } from './store.ts';

export async function openStore(db: string): Promise<ControllerStore> {
  if (/^postgres(ql)?:\/\//.test(db)) throw new Error('PostgreSQL stores are not built yet');
  return openSqliteStore(db);
}
