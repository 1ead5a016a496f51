/**
 * Forwarding between instances (peers.ts), through the routes: only a request carrying the peer
 * key is believed to come from another instance; a forwarded request is never forwarded again; a
 * round of an instance that is gone is unknown. The forwarding itself, over real sockets and
 * PostgreSQL, is integration/secure-instances.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PATHS, secureStepPath } from '../protocol/routes.js';
import { SECAGG_CONTENT_TYPE, SECURE_DEVICE_HEADER } from '../protocol/secagg/http.js';
import { parseArgs, resolveConfig, type ServerConfig } from './config.js';
import { CLIENT_HEADER, INSTANCE_ID_CHARS, PEER_HEADER, peerKey } from './peers.js';
import { makeApp } from './test-helpers.js';

const TOKEN = 'operator-token-for-peers-0123456789';
let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function secureApp(overrides: Partial<ServerConfig> = {}) {
  const made = await makeApp({
    aggregation: 'secure',
    minCohort: 2,
    secureCohort: 8,
    operatorToken: TOKEN,
    instanceUrl: 'http://127.0.0.1:1',
    ...overrides,
  });
  close = made.close;
  return made;
}

describe('the peer key', () => {
  it('is derived from the operator token, and is not the token', () => {
    expect(peerKey(TOKEN)).toMatch(/^[0-9a-f]{64}$/);
    expect(peerKey(TOKEN)).toBe(peerKey(TOKEN));
    expect(peerKey(`${TOKEN}x`)).not.toBe(peerKey(TOKEN));
    expect(peerKey(TOKEN)).not.toContain(TOKEN);
  });
});

describe('--instance-url', () => {
  it('is an origin, and needs the operator token', () => {
    expect(
      parseArgs(['--instance-url', 'http://10.0.0.5:8787'], { HEARTH_OPERATOR_TOKEN: TOKEN })
        .instanceUrl,
    ).toBe('http://10.0.0.5:8787');
    expect(() => parseArgs(['--instance-url', 'http://10.0.0.5:8787'])).toThrow(
      /instanceUrl.*operator token/,
    );
    for (const url of ['10.0.0.5:8787', 'http://h/path', 'ftp://h', 'http://u@h']) {
      expect(() => resolveConfig({ instanceUrl: url, operatorToken: TOKEN })).toThrow(
        /instanceUrl \(--instance-url\)/,
      );
    }
  });
});

describe('requests between instances', () => {
  it('registers the instance and claims its forming round while it runs', async () => {
    const { app, store } = await secureApp();
    const join = (await app.inject({ method: 'POST', url: PATHS.secureJoin })).json();
    const self = join.round.slice(0, INSTANCE_ID_CHARS);
    expect(await store.instanceUrl(self)).toBe('http://127.0.0.1:1');
    expect(await store.formingRound()).toEqual({ round: join.round, instance: self });
    await app.close();
    expect(await store.instanceUrl(self)).toBeUndefined();
    expect(await store.formingRound()).toBeUndefined();
  });

  it('believes a forwarded client identity only with the peer key', async () => {
    const { app } = await secureApp({ joinsPerRound: 1 });
    const joinAs = (headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: PATHS.secureJoin, headers });
    // Without the key the header is ignored: both joins are this one loopback client.
    expect((await joinAs({ [CLIENT_HEADER]: 'ip:10.0.0.1' })).statusCode).toBe(200);
    const second = await joinAs({ [CLIENT_HEADER]: 'ip:10.0.0.2', [PEER_HEADER]: 'f'.repeat(64) });
    expect(second.statusCode).toBe(429);
    expect(second.json().error.code).toBe('HEARTH_E_JOIN_BUDGET');
    // With it, each forwarded join counts for the client it came from.
    const key = peerKey(TOKEN);
    expect((await joinAs({ [CLIENT_HEADER]: 'ip:10.0.0.3', [PEER_HEADER]: key })).statusCode).toBe(
      200,
    );
    const again = await joinAs({ [CLIENT_HEADER]: 'ip:10.0.0.3', [PEER_HEADER]: key });
    expect(again.statusCode).toBe(429);
  });

  it("answers a round of an instance that is gone, or another's forwarded one, as unknown", async () => {
    const { app, store } = await secureApp();
    const join = (await app.inject({ method: 'POST', url: PATHS.secureJoin })).json();
    const own = join.round.slice(0, INSTANCE_ID_CHARS);
    const other = `${own === '00000000' ? '11111111' : '00000000'}${'0'.repeat(24)}`;
    const step = (round: string, headers: Record<string, string> = {}) =>
      app.inject({
        method: 'POST',
        url: secureStepPath(round, 'params'),
        headers: { [SECURE_DEVICE_HEADER]: join.secret, ...headers },
      });
    const gone = await step(other);
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe('HEARTH_E_SECAGG_ROUND');
    expect(gone.json().error.message).toMatch(/is gone/);
    // Registered, but a request another instance forwarded here is not sent on (no loops).
    await store.registerInstance(
      other.slice(0, INSTANCE_ID_CHARS),
      'http://127.0.0.1:9',
      new Date(),
      60_000,
    );
    const hop = await step(other, { [PEER_HEADER]: peerKey(TOKEN) });
    expect(hop.statusCode).toBe(404);
    expect(hop.json().error.message).toMatch(/not run here/);
    // Its own round it answers itself: the round has not formed, so no keys yet.
    const keys = await app.inject({
      method: 'POST',
      url: secureStepPath(join.round, 'keys'),
      headers: { [SECURE_DEVICE_HEADER]: join.secret, 'content-type': SECAGG_CONTENT_TYPE },
      payload: Buffer.alloc(0),
    });
    expect(keys.json().error.code).toBe('HEARTH_E_SECAGG_STAGE');
  }, 30_000);
});
