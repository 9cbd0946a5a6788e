// `trustctl db …`: schema migrations and seed data (administrative connection).
import type { Command } from 'commander';
import { registerMigrate } from './migrate.js';
import { registerSeed } from './seed.js';
import { registerStatus } from './status.js';

export function registerDbCommands(program: Command): void {
  const db = program
    .command('db')
    .description('migrate, inspect and seed the database (needs an administrative connection)');
  registerMigrate(db);
  registerStatus(db);
  registerSeed(db);
}
