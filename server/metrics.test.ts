import { afterEach, describe, expect, it } from 'vitest';
import type { ErrorReply } from '../protocol/api.js';
import { joinRound, makeApp, postUpdate, updateBody } from './test-helpers.js';

const OPERATOR = 'operator-token-of-the-tests';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** Parses exposition text into `name{labels}` -> value, checking every sample line's syntax. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-z_]+(?:\{[^}]*\})?) (-?[0-9.e+-]+|\+Inf|NaN)$/.exec(line);
    expect(match, line).not.toBeNull();
    samples.set(match![1]!, match![2] === '+Inf' ? Infinity : Number(match![2]));
  }
  return samples;
}

describe('GET /metrics', () => {
  it('exposes versions, updates, privacy and request counters in Prometheus text format', async () => {
    const made = await makeApp({ minCohort: 1, operatorToken: OPERATOR });
    close = made.close;
    const { app } = made;
    const bad = Buffer.from(updateBody({ token: (await joinRound(app)).token }));
    bad[0] = 0x58; // wrong magic
    expect((await postUpdate(app, bad)).statusCode).toBe(400);
    expect(
      (await postUpdate(app, updateBody({ token: (await joinRound(app)).token }))).statusCode,
    ).toBe(202);

    // Counters that move with each upload are the operator's only.
    for (const headers of [{}, { authorization: 'Bearer not-the-operator-token' }]) {
      const refused = await app.inject({ method: 'GET', url: '/metrics', headers });
      expect(refused.statusCode).toBe(401);
      expect(refused.json<ErrorReply>().error.code).toBe('HEARTH_E_OPERATOR_TOKEN');
    }
    const res = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${OPERATOR}` },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain; version=0.0.4');
    const m = parse(res.body);
    expect(m.get('hearth_model_version')).toBe(2);
    expect(m.get('hearth_rounds_published_total')).toBe(1);
    expect(m.get('hearth_updates_accepted_total')).toBe(1);
    expect(m.get('hearth_round_tokens_issued_total')).toBe(2);
    expect(m.get('hearth_privacy_epsilon')).toBe(Infinity); // noise off: no promise
    expect(m.get('hearth_errors_total{code="HEARTH_E_UPDATE_MAGIC"}')).toBe(1);
    expect(
      m.get('hearth_http_requests_total{method="POST",route="/v1/updates",status="202"}'),
    ).toBe(1);
    expect(
      m.get('hearth_http_requests_total{method="POST",route="/v1/rounds/join",status="200"}'),
    ).toBe(2);
  });

  it('is refused while the server has no operator token', async () => {
    const made = await makeApp({ minCohort: 1 });
    close = made.close;
    const res = await made.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(401);
    expect(res.json<ErrorReply>().error.message).toContain('HEARTH_OPERATOR_TOKEN');
  });
});
