/**
 * The visitor's privacy ledger (`hearth.ledger()`), built from what the device store keeps: the
 * stored interactions grouped by item, the request log (request-log.ts) and the rounds this device
 * took part in, priced with the same accountant the server uses (protocol/privacy/ledger.ts).
 */
import type {
  InteractionType,
  JoinedRound,
  Ledger,
  LedgerItem,
  SentRequest,
  StoredInteraction,
} from '../protocol/api.js';
import type { FederationParams } from '../protocol/manifest.js';
import { epsilonCurve } from '../protocol/privacy/ledger.js';

/** The delta a device reports at when the manifest names none (the server's default). */
export const DEFAULT_LEDGER_DELTA = 1e-6;

/** Stored interactions grouped by item, the most recently touched first. */
export function ledgerItems(
  rows: readonly StoredInteraction[],
  titleOf: (item: string) => string | undefined,
): LedgerItem[] {
  const byItem = new Map<
    string,
    { types: Partial<Record<InteractionType, number>>; count: number; first: number; last: number }
  >();
  for (const row of rows) {
    const entry = byItem.get(row.item) ?? { types: {}, count: 0, first: row.ts, last: row.ts };
    entry.types[row.type] = (entry.types[row.type] ?? 0) + 1;
    entry.count++;
    entry.first = Math.min(entry.first, row.ts);
    entry.last = Math.max(entry.last, row.ts);
    byItem.set(row.item, entry);
  }
  return [...byItem]
    .map(([item, entry]) => {
      const title = titleOf(item);
      return { item, ...(title === undefined ? {} : { title }), ...entry };
    })
    .sort((a, b) => b.last - a.last || a.item.localeCompare(b.item));
}

/** What `hearth.ledger()` answers, from what the store read and the current manifest's terms. */
export function buildLedger(parts: {
  readonly rows: readonly StoredInteraction[];
  readonly requests: readonly SentRequest[];
  readonly requestsKept: number;
  readonly rounds: readonly JoinedRound[];
  readonly federation: FederationParams | undefined;
  readonly titleOf: (item: string) => string | undefined;
}): Ledger {
  const { federation } = parts;
  const delta = federation?.delta ?? DEFAULT_LEDGER_DELTA;
  const curve = epsilonCurve(
    parts.rounds.map((round) => round.privacy),
    delta,
  );
  return {
    items: ledgerItems(parts.rows, parts.titleOf),
    requests: parts.requests,
    requestsKept: parts.requestsKept,
    rounds: parts.rounds,
    privacy: { delta, epsilon: curve.at(-1) ?? 0, curve },
    aggregation: federation ? (federation.aggregation === 'secure' ? 'secure' : 'plaintext') : null,
  };
}
