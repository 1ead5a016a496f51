import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ERRORS, isErrorCode } from '../protocol/errors.js';
import { registeredRoutes } from './app.js';
import { OPENAPI_DOCUMENT, SERVER_ERROR_CODES } from './openapi.js';
import { makeApp } from './test-helpers.js';

let app: FastifyInstance;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ app, close } = await makeApp());
});
afterAll(async () => {
  await close();
});

type Doc = {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  [key: string]: unknown;
};
const doc = OPENAPI_DOCUMENT as unknown as Doc;

/** fastify's `:param` segments in OpenAPI's `{param}` spelling. */
function toOpenApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** Every value under `node` (depth first), for the $ref and code checks. */
function* walk(node: unknown): Generator<[string, unknown]> {
  if (typeof node !== 'object' || node === null) return;
  for (const [key, value] of Object.entries(node)) {
    yield [key, value];
    yield* walk(value);
  }
}

describe('GET /v1/openapi.json', () => {
  it('serves the document', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual(JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)));
    expect(res.json().openapi).toBe('3.1.0');
  });

  it('describes exactly the registered routes', () => {
    const registered = registeredRoutes(app)
      // The CORS plugin's preflight catch-all has no path of its own; the document's description
      // says OPTIONS is answered everywhere.
      .filter((r) => !(r.method === 'OPTIONS' && r.url === '*'))
      .map((r) => `${r.method.toLowerCase()} ${toOpenApiPath(r.url)}`)
      .sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`))
      .sort();
    expect(registered.length).toBeGreaterThan(10);
    expect(new Set(registered).size).toBe(registered.length);
    expect(documented).toEqual(registered);
    expect(registeredRoutes(app)).toContainEqual({ method: 'OPTIONS', url: '*' });
  });

  it('documents every server error code, only catalogue codes, and resolvable $refs', () => {
    const text = JSON.stringify(OPENAPI_DOCUMENT);
    for (const [code, spec] of Object.entries(ERRORS)) {
      if (spec.status >= 400) expect(text).toContain(`"${code}"`);
    }
    for (const code of text.match(/HEARTH_E_[A-Z0-9_]+/g) ?? []) {
      expect(isErrorCode(code), code).toBe(true);
      expect(SERVER_ERROR_CODES).toContain(code);
    }
    for (const [key, value] of walk(OPENAPI_DOCUMENT)) {
      if (key !== '$ref') continue;
      let target: unknown = OPENAPI_DOCUMENT;
      for (const part of String(value).replace(/^#\//, '').split('/')) {
        target = (target as Record<string, unknown>)[part];
      }
      expect(target, String(value)).toBeTypeOf('object');
    }
  });

  it('gives every operation a unique id and responses whose statuses match the catalogue', () => {
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const operation = op as { operationId: string; responses: Record<string, unknown> };
        expect(ids.has(operation.operationId), `${method} ${path}`).toBe(false);
        ids.add(operation.operationId);
        expect(Object.keys(operation.responses).length).toBeGreaterThan(0);
        for (const [status, response] of Object.entries(operation.responses)) {
          const examples = (
            response as { content?: Record<string, { examples?: Record<string, unknown> }> }
          ).content?.['application/json']?.examples;
          for (const code of Object.keys(examples ?? {})) {
            expect(String(ERRORS[code as keyof typeof ERRORS].status)).toBe(status);
          }
        }
      }
    }
  });

  it('documents the binary update format under its content type', () => {
    const body = (
      doc.paths['/v1/updates']!.post as unknown as {
        requestBody: { description: string; content: Record<string, unknown> };
      }
    ).requestBody;
    expect(Object.keys(body.content)).toEqual(['application/vnd.hearth.update']);
    for (const field of ['magic', 'format', 'dtype', 'reserved', 'baseVersion', 'layoutHash']) {
      expect(body.description).toContain(`| ${field} |`);
    }
    expect(body.description).toContain('| 28 | 16 | roundToken |');
  });
});
