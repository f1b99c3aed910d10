import type { Logger } from 'winston';
import type { GradesStoreSettings } from './config.ts';
import type { SeedStudent } from './seed.ts';
import type { GradeStore } from './store.ts';
import { SqliteGradeStore } from './sqliteStore.ts';
import { PostgresGradeStore } from './postgresStore.ts';

/** The store the settings name: SQLite under dataDir (the default), or the shared PostgreSQL. */
export async function openGradeStore(settings: GradesStoreSettings, dataDir: string, logger?: Logger, seed?: readonly SeedStudent[]): Promise<GradeStore> {
  if (settings.kind === 'postgres') return PostgresGradeStore.open({ ...settings, logger, seed });
  return SqliteGradeStore.open(dataDir, seed);
}
