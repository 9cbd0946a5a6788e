// `trustctl org …`: the organisations on the platform.
import type { Command } from 'commander';
import { registerOrgList } from './list.js';
import { registerOrgShow } from './show.js';

export function registerOrgCommands(program: Command): void {
  const org = program.command('org').description('organisations (trusts, nursery groups) on the platform');
  registerOrgList(org);
  registerOrgShow(org);
}
