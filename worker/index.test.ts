/**
 * The worker entry exposes the documented API and nothing else of the engine. comlink's `expose` is
 * replaced so the test sees the very object the entry hands it; that object is then exposed for
 * real on a MessageChannel and called the way the page calls it.
 */
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { ENGINE_API_METHODS, ENGINE_API_VERSION, type EngineApi } from '../protocol/api.js';

const exposed = vi.hoisted(() => [] as unknown[]);
vi.mock('comlink', async (importOriginal) => ({
  ...(await importOriginal<typeof import('comlink')>()),
  expose: (value: unknown) => void exposed.push(value),
}));

/** The README's SDK API, as the engine serves it (`destroy` is the page's own). */
const DOCUMENTED = [
  'handshake',
  'init',
  'track',
  'recommend',
  'status',
  'stored',
  'sync',
  'optOut',
  'optIn',
  'forget',
  'ledger',
];

/** Public members of the Engine class that are not API: replays and tests use them in Node. */
const ENGINE_ONLY = ['sessionScores', 'learnPending', 'dispose', 'requests'];

async function entryApi(): Promise<Record<string, unknown>> {
  await import('./index.js');
  expect(exposed).toHaveLength(1);
  return exposed[0] as Record<string, unknown>;
}

const ports: MessagePort[] = [];
afterEach(() => {
  for (const port of ports.splice(0)) port.close();
});

describe('worker entry', () => {
  it('lists every EngineApi method once', () => {
    expect([...ENGINE_API_METHODS]).toEqual(DOCUMENTED);
    expectTypeOf<(typeof ENGINE_API_METHODS)[number]>().toEqualTypeOf<keyof EngineApi>();
  });

  it('exposes exactly the documented methods, nothing of the engine', async () => {
    const api = await entryApi();
    expect(Reflect.ownKeys(api)).toEqual(DOCUMENTED);
    for (const key of DOCUMENTED) expect(typeof api[key]).toBe('function');
    for (const key of [...ENGINE_ONLY, 'config', 'store', 'constructor', 'toString']) {
      expect(key in api, key).toBe(false);
    }
    expect(Object.getPrototypeOf(api)).toBeNull();
    expect(Object.isFrozen(api)).toBe(true);
    expect(await (api as unknown as EngineApi).handshake()).toBe(ENGINE_API_VERSION);
  });

  it('answers API calls over comlink and refuses the engine-only ones', async () => {
    const api = await entryApi();
    const { port1, port2 } = new MessageChannel();
    ports.push(port1, port2);
    const real = await vi.importActual<typeof import('comlink')>('comlink');
    real.expose(api, port2 as never);
    const remote = real.wrap<Record<string, () => Promise<unknown>>>(port1 as never);
    expect(await remote.handshake!()).toBe(ENGINE_API_VERSION);
    for (const key of ENGINE_ONLY) {
      await expect(remote[key]!(), key).rejects.toThrow();
    }
  });
});
