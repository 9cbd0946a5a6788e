import type { Command } from 'commander';
import { printable } from '../../io/printable.js';
import { commandContext } from '../context.js';

export function registerOrgList(org: Command): void {
  org
    .command('list')
    .description('list organisations with their slugs and number of sites (no personal data; needs no session)')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { withOperatorDb } = await import('../../db/with-db.js');
      const { listOrganisations } = await import('../../db/directory.js');
      const orgs = await withOperatorDb(ctx.db, (db) => listOrganisations(db.kysely));
      ctx.print(orgs, () =>
        orgs.length === 0
          ? 'No organisations yet. Try: trustctl db seed --demo'
          : orgs.map((o) => `${o.slug.padEnd(24)} ${o.kind.padEnd(14)} ${String(o.siteCount).padStart(3)} sites  ${printable(o.name)}`).join('\n'),
      );
    });
}
