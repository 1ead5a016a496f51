/**
 * The page's tiny client against the real comlink `expose` the worker uses, over a MessageChannel:
 * if comlink's wire format ever changes under us, this fails before a browser does.
 */
import { expose, transferHandlers } from 'comlink';
import { afterEach, describe, expect, it } from 'vitest';
import { installErrorTransfer } from '../protocol/error-wire.js';
import { HearthError } from '../protocol/errors.js';
import { connect } from './rpc.js';

interface Echo {
  add(a: number, b: number): Promise<number>;
  fail(): Promise<never>;
  crash(): Promise<never>;
}

const ports: MessagePort[] = [];
afterEach(() => {
  for (const port of ports.splice(0)) port.close();
});

function pair(): ReturnType<typeof connect<Echo>> {
  installErrorTransfer(transferHandlers as never);
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  expose(
    {
      add: async (a: number, b: number) => a + b,
      fail: async () => {
        throw new HearthError('HEARTH_E_ARGUMENT', 'k must be positive');
      },
      crash: async () => {
        throw new TypeError('boom');
      },
    },
    port2 as never,
  );
  const remote = connect<Echo>(port1 as unknown as Worker);
  port1.start();
  return remote;
}

describe('page-side RPC client', () => {
  it('calls methods exposed with comlink and gets their results', async () => {
    const remote = pair();
    expect(await Promise.all([remote.add(1, 2), remote.add(40, 2)])).toEqual([3, 42]);
    // Awaiting the proxy itself must not send a call named "then".
    expect((remote as unknown as { then?: unknown }).then).toBeUndefined();
  });

  it('rebuilds thrown errors with their code and the engine message', async () => {
    const remote = pair();
    const error = await remote.fail().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HearthError);
    expect((error as HearthError).code).toBe('HEARTH_E_ARGUMENT');
    expect((error as HearthError).message).toBe('invalid argument: k must be positive');
    const plain = await remote.crash().catch((e: unknown) => e);
    expect(plain).not.toBeInstanceOf(HearthError);
    expect((plain as Error).name).toBe('TypeError');
    expect((plain as Error).message).toBe('boom');
  });
});
