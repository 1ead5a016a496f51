/**
 * The model recommendations come from, swapped (new global version, local fine-tune) while calls
 * may still be using the old one. `recommend()` awaits between reading the model and finishing with
 * it, and online learning swaps models seconds after a click; disposing a model under a running call
 * would fail it with a disposed-tensor error. A replaced model is disposed once no call uses it.
 * Users are counted per model: a call that never ends (its GPU was lost, worker/gpu-loss.ts) keeps
 * only its own model, never the ones swapped in after it.
 */
import type { SessionModel } from '../model/session-model.js';

/** Holds the serving model; see the module comment. */
export class ServingSlot {
  private model: SessionModel | null = null;
  /** Calls running on each model that has any. */
  private readonly users = new Map<SessionModel, number>();

  /** The model new calls get (null before any model is loaded). */
  get current(): SessionModel | null {
    return this.model;
  }

  /** Makes `next` the serving model; the old one is disposed now or when its last user finishes. */
  swap(next: SessionModel | null): void {
    const old = this.model;
    this.model = next;
    if (old && old !== next && !this.users.has(old)) old.dispose();
  }

  /** Runs `fn` with the current model, keeping that model alive until `fn` settles. */
  async use<T>(fn: (model: SessionModel | null) => Promise<T>): Promise<T> {
    const model = this.model;
    if (model) this.users.set(model, (this.users.get(model) ?? 0) + 1);
    try {
      return await fn(model);
    } finally {
      if (model) {
        const left = this.users.get(model)! - 1;
        if (left > 0) this.users.set(model, left);
        else {
          this.users.delete(model);
          if (model !== this.model) model.dispose();
        }
      }
    }
  }
}
