// How a request reads in a terminal.
import { daysUntil } from '../../../dsar/due-date.js';
import type { DsarRequest } from '../../../dsar/requests.js';
import { printable } from '../../../io/printable.js';

export function renderRequest(r: DsarRequest, today: string): string {
  const days = daysUntil(today, r.effectiveDueOn);
  const when =
    r.status === 'closed'
      ? `closed ${r.closedAt?.slice(0, 10)}`
      : days < 0
        ? `OVERDUE by ${-days} day(s)`
        : days === 0
          ? 'due TODAY'
          : `${days} day(s) left`;
  const extended = r.extendedDueOn ? ` (extended from ${r.dueOn}: ${printable(r.extensionReason)})` : '';
  return `${r.org}/${r.reference}: ${r.kind === 'erasure' ? 'erasure of ' : ''}${r.subjectType} ${r.subjectId}, received ${r.receivedOn}, due ${r.effectiveDueOn}${extended}, ${r.status}, ${when}`;
}
