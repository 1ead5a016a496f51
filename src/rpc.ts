/**
 * A tiny client for the engine's comlink endpoint. It speaks comlink's wire format (`RpcCall` /
 * `RpcReply` in protocol/api.ts) so the page does not ship comlink itself: the loader has a 2 KB
 * brotli budget, and the page only ever calls methods. The worker keeps comlink's `expose`.
 */
import type { RpcCall, RpcReply } from '../protocol/api.js';
import type { ThrownOnWire } from '../protocol/error-wire.js';
import { HearthError } from '../protocol/hearth-error.js';

/** `T`'s methods as seen across the worker boundary: every one returns a promise. */
export type Remote<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

type Settle = [resolve: (value: unknown) => void, reject: (error: Error) => void];

/** Wraps a worker whose engine was exposed with comlink as a typed remote object. */
export function connect<T>(worker: Worker): Remote<T> {
  const pending = new Map<number, Settle>();
  let lastId = 0;
  worker.addEventListener('message', ({ data }: MessageEvent<RpcReply | undefined>) => {
    const settle = data && pending.get(data.id);
    if (!settle) return;
    pending.delete(data.id);
    if (data.type === 'RAW') return settle[0](data.value);
    // The worker's 'throw' handler (protocol/error-wire.ts) sends {name, code, message}: the error
    // takes exactly those (the engine's message is complete; nothing is composed again here).
    const { wire } = data.value as ThrownOnWire;
    settle[1](
      Object.assign(
        wire.code ? new HearthError(wire.code as HearthError['code']) : new Error(),
        wire,
      ),
    );
  });
  return new Proxy({} as Remote<T>, {
    // `then` must stay undefined, or awaiting the proxy would send a call named "then".
    get: (_, method: string) =>
      method === 'then'
        ? undefined
        : (...args: unknown[]) =>
            new Promise((resolve, reject) => {
              const call: RpcCall = {
                id: ++lastId,
                type: 'APPLY',
                path: [method],
                argumentList: args.map((value) => ({ type: 'RAW', value })),
              };
              pending.set(call.id, [resolve, reject]);
              // A value that cannot be cloned (a function, a DOM node) throws here: the promise
              // rejects with the DataCloneError instead of reaching the worker.
              worker.postMessage(call);
            }),
  });
}
