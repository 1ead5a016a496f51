/**
 * The model recommendations come from, swapped (new global version, local fine-tune) while calls
 * may still be using the old one. `recommend()` awaits between reading the model and finishing with
 * it, and online learning swaps models seconds after a click; disposing a model under a running call
 * would fail it with a disposed-tensor error. A replaced model is disposed once no call uses it.
 */
import type { SessionModel } from '../model/session-model.js';

/** Holds the serving model; see the module comment. */
export class ServingSlot {
  private model: SessionModel | null = null;
  private users = 0;
  private readonly retired: SessionModel[] = [];

  /** The model new calls get (null before any model is loaded). */
  get current(): SessionModel | null {
    return this.model;
  }

  /** Makes `next` the serving model; the old one is disposed now or when its last user finishes. */
  swap(next: SessionModel | null): void {
    const old = this.model;
    this.model = next;
    if (!old || old === next) return;
    if (this.users > 0) this.retired.push(old);
    else old.dispose();
  }

  /** Runs `fn` with the current model, keeping that model alive until `fn` settles. */
  async use<T>(fn: (model: SessionModel | null) => Promise<T>): Promise<T> {
    this.users++;
    try {
      return await fn(this.model);
    } finally {
      if (--this.users === 0) for (const model of this.retired.splice(0)) model.dispose();
    }
  }
}
