// `trustctl audit …`: the tamper-evident audit trail.
import type { Command } from 'commander';
import { registerAuditCheckpoint } from './checkpoint.js';
import { registerAuditExport } from './export.js';
import { registerAuditKeygen } from './keygen.js';
import { registerAuditSeal } from './seal.js';
import { registerAuditVerify } from './verify.js';

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description('the audit trail: seal it into hash chains, checkpoint, verify, export');
  registerAuditSeal(audit);
  registerAuditVerify(audit);
  registerAuditExport(audit);
  registerAuditCheckpoint(audit);
  registerAuditKeygen(audit);
}
