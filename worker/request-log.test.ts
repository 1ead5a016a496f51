import { describe, expect, it } from 'vitest';
import type { SentRequest } from '../protocol/api.js';
import { bodyBytes, RequestLog, requestKind } from './request-log.js';

describe('the request log', () => {
  it('names what each of the server’s routes is for', () => {
    const base = 'https://fl.example';
    expect(requestKind(`${base}/v1/model`)).toBe('model');
    expect(requestKind(`${base}/v1/model/12/weights?dtype=int8`)).toBe('weights');
    expect(requestKind(`${base}/v1/catalog`)).toBe('catalog');
    expect(requestKind(`${base}/v1/rounds/join`)).toBe('join');
    expect(requestKind(`${base}/v1/updates`)).toBe('update');
    expect(requestKind(`${base}/v1/secure/join`)).toBe('secure');
    expect(requestKind(`${base}/v1/secure/rounds/ab12/masked`)).toBe('secure');
    expect(requestKind('https://cdn.example/sdk/tfjs-backend-wasm.wasm')).toBe('other');
  });

  it('counts the bytes of every body kind the worker sends', () => {
    expect(bodyBytes(null)).toBe(0);
    expect(bodyBytes(undefined)).toBe(0);
    expect(bodyBytes('{}')).toBe(2);
    expect(bodyBytes('é')).toBe(2);
    expect(bodyBytes(new Uint8Array(44))).toBe(44);
    expect(bodyBytes(new Float32Array(3))).toBe(12);
    expect(bodyBytes(new ArrayBuffer(7))).toBe(7);
    expect(bodyBytes(new Blob(['abc']))).toBe(3);
  });

  it('records every call with its sizes and status, replies untouched, failures as status 0', async () => {
    const logged: SentRequest[] = [];
    const log = new RequestLog(
      async (r) => void logged.push(r),
      () => 42,
    );
    const inner: typeof fetch = async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.endsWith('/down')) throw new TypeError('Failed to fetch');
      if (url.endsWith('/empty')) return new Response(null, { status: 204 });
      return new Response(new Uint8Array(url.includes('/model/') ? 1000 : 3), { status: 200 });
    };
    const wrapped = log.wrap(inner);
    const reply = await wrapped('https://fl.example/v1/model/3/weights');
    expect((await reply.arrayBuffer()).byteLength).toBe(1000);
    await wrapped('https://fl.example/v1/updates', {
      method: 'post',
      body: new Uint8Array(44),
    });
    await wrapped(new Request('https://fl.example/v1/secure/rounds/r/params', { method: 'POST' }));
    await wrapped('https://fl.example/empty');
    await expect(wrapped('https://fl.example/down')).rejects.toThrow('Failed to fetch');
    await log.settled();
    const common = { ts: 42 };
    expect(logged).toEqual(
      expect.arrayContaining([
        {
          ...common,
          kind: 'weights',
          method: 'GET',
          url: 'https://fl.example/v1/model/3/weights',
          sent: 0,
          received: 1000,
          status: 200,
        },
        {
          ...common,
          kind: 'update',
          method: 'POST',
          url: 'https://fl.example/v1/updates',
          sent: 44,
          received: 3,
          status: 200,
        },
        {
          ...common,
          kind: 'secure',
          method: 'POST',
          url: 'https://fl.example/v1/secure/rounds/r/params',
          sent: 0,
          received: 3,
          status: 200,
        },
        {
          ...common,
          kind: 'other',
          method: 'GET',
          url: 'https://fl.example/empty',
          sent: 0,
          received: 0,
          status: 204,
        },
        {
          ...common,
          kind: 'other',
          method: 'GET',
          url: 'https://fl.example/down',
          sent: 0,
          received: 0,
          status: 0,
        },
      ]),
    );
    expect(logged).toHaveLength(5);
  });

  it('never fails a request because the log could not be written', async () => {
    const log = new RequestLog(() => Promise.reject(new Error('disk gone')));
    const wrapped = log.wrap(async () => new Response('ok'));
    expect(await (await wrapped('https://fl.example/v1/model')).text()).toBe('ok');
    await log.settled();
  });
});
