/**
 * The per-client join budget: one client identity places at most `--joins-per-round` updates in a
 * round (default 1), so one script cannot fill a round on its own however fast it sends. The
 * identity is what the server can tell clients apart by without storing anything about them: the
 * IPv4 address, or the /64 of an IPv6 address (one subscriber usually holds a whole /64). It is
 * kept in this process's memory for the rounds still collecting, never written to the database;
 * with several instances on PostgreSQL each instance keeps its own. The cost: visitors behind one
 * shared address (an office NAT, carrier-grade NAT) share one place per round; the device keeps
 * its update and offers it again in a later round.
 */
import { HearthError } from '../protocol/errors.js';

/** Rounds remembered at once; older ones have closed long before. */
const ROUNDS_KEPT = 16;

/** The identity a budget is kept for: an IPv4 address, or an IPv6 address's /64 prefix. */
export function clientIdentity(address: string): string {
  // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (v4) return v4[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [
        ...left,
        ...new Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'),
        ...right,
      ]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** Places taken per round, by client identity. */
export class JoinBudget {
  private readonly rounds = new Map<string, Map<string, number>>();

  /** `perRound` places per client identity in one round; 0 turns the budget off. */
  constructor(private readonly perRound: number) {}

  /**
   * Takes one of `client`'s places in `round`, or throws HEARTH_E_JOIN_BUDGET when it has none
   * left. Returns the release to call when what took the place did not happen after all.
   */
  take(round: string | number, client: string): () => void {
    if (this.perRound === 0) return () => undefined;
    const key = String(round);
    let taken = this.rounds.get(key);
    if (!taken) {
      taken = new Map();
      this.rounds.set(key, taken);
      // Insertion order is age: drop the oldest rounds beyond the bound.
      for (const old of [...this.rounds.keys()].slice(0, -ROUNDS_KEPT)) this.rounds.delete(old);
    }
    const used = taken.get(client) ?? 0;
    if (used >= this.perRound) {
      throw new HearthError(
        'HEARTH_E_JOIN_BUDGET',
        `round ${key} already holds ${used} from this client (at most ${this.perRound})`,
      );
    }
    taken.set(client, used + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = taken.get(client) ?? 0;
      if (now <= 1) taken.delete(client);
      else taken.set(client, now - 1);
    };
  }

  /**
   * One request's place for `client`, taken in whichever round the request's update lands in:
   * `admit(round)` takes it (again for the same round it keeps the one it has; for another round it
   * gives that one back first), `release()` gives it back when the request failed after all.
   */
  place(client: string): { admit(round: number): void; release(): void } {
    let held: { round: number; release: () => void } | undefined;
    return {
      admit: (round) => {
        if (held?.round === round) return;
        held?.release();
        held = undefined;
        held = { round, release: this.take(round, client) };
      },
      release: () => held?.release(),
    };
  }
}
