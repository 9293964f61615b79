/** @module test/support/events — every event a manager emits, kept for assertions on outcomes. */
import type { CertManager, CertManagerEvents } from '@autotls/core';

type EventName = keyof CertManagerEvents;
export type EventPayload<K extends EventName> = CertManagerEvents[K][0];

const EVENT_NAMES = [
  'cert_obtaining',
  'cert_obtained',
  'cert_renewed',
  'cert_failed',
  'cert_giving_up',
  'cached_managed_cert',
  'on_demand_denied',
  'cert_expiring',
] as const satisfies readonly EventName[];

export interface RecordedEvents {
  /** The payloads of `event` so far, oldest first; `identifier` narrows them to one name. */
  of<K extends EventName>(event: K, identifier?: string): EventPayload<K>[];
}

/** Starts recording `manager`'s events (call it before `manage()`). */
export function recordEvents(manager: CertManager): RecordedEvents {
  const seen: Array<{ event: EventName; payload: { identifier: string } }> = [];
  for (const event of EVENT_NAMES) {
    manager.on(event, (payload: { identifier: string }) => seen.push({ event, payload }));
  }
  return {
    of: <K extends EventName>(event: K, identifier?: string) =>
      seen
        .filter((entry) => entry.event === event && (!identifier || entry.payload.identifier === identifier))
        .map((entry) => entry.payload as EventPayload<K>),
  };
}
