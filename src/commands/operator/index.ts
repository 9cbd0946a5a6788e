// `trustctl operator …`: operator LOGIN roles.
import type { Command } from 'commander';
import { registerOperatorAdd } from './add.js';

export function registerOperatorCommands(program: Command): void {
  const operator = program.command('operator').description('manage operator roles (the people who run trustctl)');
  registerOperatorAdd(operator);
}
