// How grants, policies and `access who` read to a person.
import type { AccessPolicy, Grant } from '../../access/grants.js';
import { formatDuration } from '../../access/duration.js';
import type { WhoResult } from '../../access/who.js';
import { printable as p } from '../../io/printable.js';

const when = (iso: string): string => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

function timing(g: Grant): string {
  if (g.state === 'active') return g.expiresAt ? `until ${when(g.expiresAt)} (${formatDuration(g.secondsLeft ?? 0)} left)` : 'standing';
  if (g.state === 'scheduled') return `from ${when(g.startsAt)} (in ${formatDuration(g.secondsLeft ?? 0)})${g.expiresAt ? ` until ${when(g.expiresAt)}` : ''}`;
  if (g.state === 'pending') return g.expiresAt ? `for ${formatDuration((Date.parse(g.expiresAt) - Date.parse(g.startsAt)) / 1000)} once approved` : 'standing, once approved';
  return g.endedAt ? `ended ${when(g.endedAt)}` : '';
}

export function renderGrant(g: Grant): string {
  const who = p(g.user.email ?? g.user.id);
  const lines = [
    `  ${g.id}  ${g.state.toUpperCase()}  ${g.role} at ${g.org}/${g.site ?? '(every site)'}  ${who}`,
    `  ${timing(g)}${g.ticket ? `  ticket ${p(g.ticket)}` : ''}${g.requestedBy ? `  requested by ${p(g.requestedBy)}` : ''}` +
      `${g.approvedBy ? `  approved by ${p(g.approvedBy)}` : ''}${g.deniedBy ? `  denied by ${p(g.deniedBy)}` : ''}${g.revokedBy ? `  revoked by ${p(g.revokedBy)}` : ''}`,
  ];
  if (g.reason) lines.push(`  reason: ${p(g.reason)}`);
  if (g.revokeReason) lines.push(`  revoked because: ${p(g.revokeReason)}`);
  return lines.join('\n');
}

export function renderGrants(grants: readonly Grant[], empty: string): string {
  if (grants.length === 0) return empty;
  return grants.map(renderGrant).join('\n\n');
}

export function renderPolicies(policies: readonly AccessPolicy[]): string {
  if (policies.length === 0) return 'No access policies: access grants are refused until one is set (trustctl access policy set).';
  return [
    `${'organisation'.padEnd(16)}${'role'.padEnd(19)}${'longest grant'.padEnd(15)}${'approval'.padEnd(22)}ticket pattern`,
    ...policies.map(
      (policy) =>
        `${policy.org.padEnd(16)}${policy.role.padEnd(19)}${formatDuration(policy.maxDurationSeconds).padEnd(15)}` +
        `${(policy.sensitive ? 'another operator' : 'not needed').padEnd(22)}${p(policy.ticketPattern)}`,
    ),
  ].join('\n');
}

export function renderWho(w: WhoResult): string {
  const lines = [`Who could see ${w.child ? `child ${w.child} at ` : 'the children of '}${w.org}/${w.site} at ${when(w.at)}:`];
  if (w.users.length === 0) lines.push('  no user');
  for (const u of w.users) {
    lines.push(
      `  ${p(u.user.email ?? u.user.id).padEnd(40)} ${u.role.padEnd(18)} ${u.sees.padEnd(24)} grant ${u.grantId}` +
        `${u.orgWide ? ' (organisation-wide)' : ''}${u.expiresAt ? ` until ${when(u.expiresAt)}` : ''}${u.ticket ? ` ticket ${p(u.ticket)}` : ''}`,
    );
  }
  lines.push(`Operator sessions covering ${w.org} then:${w.operators.length === 0 ? ' none' : ''}`);
  for (const o of w.operators) {
    lines.push(
      `  ${p(o.dbUser).padEnd(24)} ${when(o.startedAt)} to ${o.endedAt ? when(o.endedAt) : 'open'}${o.allOrgs ? ' (all organisations)' : ''}` +
        `  reason: ${p(o.reason)}${o.ticket ? `  ticket ${p(o.ticket)}` : ''}`,
    );
  }
  return lines.join('\n');
}
