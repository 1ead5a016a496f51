import { describe, expect, it } from 'vitest';
import type { SessionModel } from '../model/session-model.js';
import { ServingSlot } from './serving-slot.js';

/** A stand-in model that records whether it was disposed. */
function fake(): SessionModel & { gone: boolean } {
  const model = { gone: false, dispose: () => void (model.gone = true) };
  return model as unknown as SessionModel & { gone: boolean };
}

describe('serving slot', () => {
  it('disposes a replaced model at once when nobody uses it', () => {
    const slot = new ServingSlot();
    const a = fake();
    const b = fake();
    slot.swap(a);
    slot.swap(b);
    expect(a.gone).toBe(true);
    expect(slot.current).toBe(b);
    slot.swap(b); // same model again: nothing to dispose
    expect(b.gone).toBe(false);
  });

  it('keeps a model alive until the call using it finishes', async () => {
    const slot = new ServingSlot();
    const a = fake();
    const b = fake();
    slot.swap(a);
    let release!: () => void;
    const running = slot.use(async (model) => {
      await new Promise<void>((resolve) => (release = resolve));
      return model;
    });
    slot.swap(b); // e.g. online learning finished while a recommend awaited
    expect(a.gone).toBe(false);
    release();
    expect(await running).toBe(a);
    expect(a.gone).toBe(true);
    expect(b.gone).toBe(false);
  });
});

describe('serving slot with a call that never ends', () => {
  it("keeps only that call's model: the models swapped in after it are disposed as usual", async () => {
    const slot = new ServingSlot();
    const lost = fake();
    slot.swap(lost);
    // A call whose GPU was lost: it never settles.
    void slot.use(() => new Promise<never>(() => undefined));
    const b = fake();
    const c = fake();
    slot.swap(b);
    expect(lost.gone).toBe(false);
    // A call on b finishes after b was replaced: b goes with it, whatever the hung call does.
    let release!: () => void;
    const running = slot.use(async () => new Promise<void>((resolve) => (release = resolve)));
    slot.swap(c);
    expect(b.gone).toBe(false);
    release();
    await running;
    expect(b.gone).toBe(true);
    slot.swap(fake());
    expect(c.gone).toBe(true);
    expect(lost.gone).toBe(false);
  });
});
