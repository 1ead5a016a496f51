import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JoinReply, UpdateReply } from '../protocol/api.js';
import { UPDATE_CONTENT_TYPE } from '../protocol/update-format.js';
import { resolveConfig, type ServerConfig } from './config.js';
import { bytesToFloat32 } from './float32-bytes.js';
import { BROWSER_ACCEPT_ENCODING } from './kept-bodies.js';
import { startServer } from './start.js';
import { makeDelta, seedWeights, updateBody, writeSeedDir } from './test-helpers.js';

let dir: string;
let cleanupSeed: () => Promise<void>;
let config: ServerConfig;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-db-'));
  const seed = await writeSeedDir();
  cleanupSeed = seed.cleanup;
  // float32 weights: the test reads the seed back and compares it exactly.
  config = resolveConfig({
    aggregation: 'plaintext',
    port: 0,
    dbPath: join(dir, 'nested', 'hearth.db'),
    modelDir: seed.dir,
    weightsDtype: 'float32',
  });
});
afterEach(async () => {
  await cleanupSeed();
  await rm(dir, { recursive: true, force: true });
});

async function postOne(url: string, salt: number): Promise<UpdateReply> {
  const ticket = (await (
    await fetch(`${url}/v1/rounds/join`, { method: 'POST' })
  ).json()) as JoinReply;
  const res = await fetch(`${url}/v1/updates`, {
    method: 'POST',
    headers: { 'content-type': UPDATE_CONTENT_TYPE },
    body: new Uint8Array(
      updateBody({ token: ticket.token, baseVersion: ticket.version, delta: makeDelta(0.4, salt) }),
    ),
  });
  expect(res.status).toBe(202);
  return (await res.json()) as UpdateReply;
}

describe('startServer on a real socket and SQLite file', () => {
  it('serves, takes updates, and keeps them across a restart', async () => {
    const first = await startServer({ ...config, minCohort: 2 });
    try {
      expect(first.port).toBeGreaterThan(0);
      expect(first.url).toBe(`http://127.0.0.1:${first.port}`);
      // Asked as a browser asks: the manifest comes in brotli, the weights in gzip (fetch inflates).
      const headers = { 'accept-encoding': BROWSER_ACCEPT_ENCODING };
      const manifestRes = await fetch(`${first.url}/v1/model`, { headers });
      expect(manifestRes.headers.get('etag')).toMatch(/^"m1-[0-9a-z]+\.br"$/);
      expect(manifestRes.headers.get('content-encoding')).toBe('br');
      const manifest = (await manifestRes.json()) as { version: number; weights: { url: string } };
      const weightsRes = await fetch(new URL(manifest.weights.url, `${first.url}/v1/model`), {
        headers,
      });
      expect(weightsRes.headers.get('content-type')).toBe('application/octet-stream');
      expect(weightsRes.headers.get('content-encoding')).toBe('gzip');
      const weights = bytesToFloat32(new Uint8Array(await weightsRes.arrayBuffer()));
      expect(Array.from(weights)).toEqual(Array.from(seedWeights()));
      expect(await postOne(first.url, 1)).toEqual({
        accepted: true,
        round: 1,
        received: 1,
        version: 1,
      });
    } finally {
      await first.close();
    }

    // No seed directory needed once the database has a version.
    const second = await startServer({ ...config, minCohort: 2, modelDir: undefined });
    try {
      expect(await second.store.counts()).toMatchObject({ versions: 1, updates: 1, usedTokens: 1 });
      expect(await postOne(second.url, 2)).toMatchObject({ round: 1, received: 2, version: 2 });
    } finally {
      await second.close();
    }

    const third = await startServer({ ...config, modelDir: undefined });
    try {
      expect(third.version).toBe(2);
      const manifest = (await (await fetch(`${third.url}/v1/model`)).json()) as { version: number };
      expect(manifest.version).toBe(2);
      expect((await fetch(`${third.url}/v1/model/2/weights`)).status).toBe(200);
    } finally {
      await third.close();
    }
  });

  it('refuses to start on an empty database without a model directory', async () => {
    await expect(startServer({ ...config, modelDir: undefined })).rejects.toThrow(/--model/);
  });
});

describe('every request ends', () => {
  /** Opens a socket that announces a 100-byte body and never sends it; resolves when it closes. */
  const silentBody = (port: number, path: string): Promise<string> =>
    new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () =>
        socket.write(
          `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
        ),
      );
      let reply = '';
      socket.on('data', (chunk) => (reply += String(chunk)));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(reply));
    });

  it('closes sockets whose announced body never comes, on known and unknown paths', async () => {
    const server = await startServer({ ...config, requestTimeoutSeconds: 1 });
    try {
      // Without the timeout these stay open for good (Node's own limit is minutes).
      const sockets = Array.from({ length: 100 }, (_, i) =>
        silentBody(server.port, i % 2 ? '/v1/rounds/join' : '/no/such/path'),
      );
      const closed = await Promise.race([
        Promise.all(sockets).then(() => 'all closed'),
        new Promise((resolve) => setTimeout(() => resolve('still open'), 20_000)),
      ]);
      expect(closed).toBe('all closed');
      // The server still answers, and an unknown path gets a catalogue code.
      const res = await fetch(`${server.url}/no/such/path`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        'HEARTH_E_NOT_FOUND',
      );
    } finally {
      await server.close();
    }
  }, 60_000);

  it('keeps one timeout listener on a keep-alive socket, however many requests it carries', async () => {
    const server = await startServer({ ...config, requestTimeoutSeconds: 1 });
    const listeners: number[] = [];
    server.app.server.on('connection', (socket: import('node:net').Socket) => {
      socket.on('data', () => listeners.push(socket.listenerCount('timeout')));
    });
    try {
      const socket = connect(server.port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      let replies = 0;
      socket.on('data', (chunk) => (replies += String(chunk).split('HTTP/1.1 200').length - 1));
      for (let i = 0; i < 20; i++) {
        socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
        await expect.poll(() => replies).toBe(i + 1);
      }
      socket.destroy();
      // Node keeps one listener of its own; each request's is removed once its body is in.
      expect(Math.max(...listeners)).toBeLessThanOrEqual(2);
    } finally {
      await server.close();
    }
  });
});
