// `trustctl dsar …`: subject access requests, from logging one to sending
// a verifiable bundle.
import type { Command } from 'commander';
import { registerDsarErase } from './erase.js';
import { registerDsarExport } from './export.js';
import { registerDsarVerify } from './verify.js';
import { registerRequestClose } from './request/close.js';
import { registerRequestExtend } from './request/extend.js';
import { registerRequestList } from './request/list.js';
import { registerRequestOpen } from './request/open.js';

export function registerDsarCommands(program: Command): void {
  const dsar = program
    .command('dsar')
    .description('subject access and erasure requests: record them, export verifiable bundles, erase with a certificate, track due dates');
  const request = dsar.command('request').description('record, extend, close and list subject access and erasure requests');
  registerRequestOpen(request);
  registerRequestExtend(request);
  registerRequestClose(request);
  registerRequestList(request);
  registerDsarExport(dsar);
  registerDsarVerify(dsar);
  registerDsarErase(dsar);
  registerRequestList(dsar);
}
