/**
 * The OpenAPI 3.1 description of the server's HTTP surface, served at `GET /v1/openapi.json`. Written
 * by hand (the routes take binary bodies and hand-validate them, so there are no route schemas to
 * generate it from); openapi.test.ts holds it against the routes fastify actually registered, so the
 * two cannot drift apart. Error replies are built from the catalogue, so codes and statuses here are
 * the ones the server sends.
 */
import { CATALOG_LIMITS } from '../protocol/catalog.js';
import { ERRORS, type ErrorCode } from '../protocol/errors.js';
import {
  UPDATE_CONTENT_TYPE,
  UPDATE_FORMAT_VERSION,
  UPDATE_HEADER_BYTES,
} from '../protocol/update-format.js';
import { SITE_KEY_HEADER } from '../protocol/routes.js';
import {
  SECAGG_CONTENT_TYPE,
  SECURE_DEVICE_HEADER,
  SECURE_STEPS,
} from '../protocol/secagg/http.js';

type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };
type JsonObject = { readonly [key: string]: Json };

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });

/** Codes the server can send: catalogue entries with an HTTP status, retired ones excluded. */
export const SERVER_ERROR_CODES: readonly ErrorCode[] = (Object.keys(ERRORS) as ErrorCode[]).filter(
  (code) => {
    const spec: { status: number; retired?: true } = ERRORS[code];
    return spec.status >= 400 && !spec.retired;
  },
);

/** Error responses of an operation, grouped by status, each code with its catalogue message. */
function errors(...codes: ErrorCode[]): Record<string, JsonObject> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of [...codes, 'HEARTH_E_INTERNAL' as const]) {
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, JsonObject> = {};
  for (const [status, group] of byStatus) {
    out[String(status)] = {
      description: group.map((code) => `${code}: ${ERRORS[code].message}`).join('; '),
      ...(status === 429
        ? { headers: { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } }
        : {}),
      content: {
        'application/json': {
          schema: ref('ErrorReply'),
          examples: Object.fromEntries(
            group.map((code) => [
              code,
              { value: { error: { code, message: ERRORS[code].message } } },
            ]),
          ),
        },
      },
    };
  }
  return out;
}

const json = (schema: JsonObject, description: string): JsonObject => ({
  description,
  content: { 'application/json': { schema } },
});

const ETAG_HEADER = { ETag: { schema: { type: 'string' } } };

/** Codes every gated POST route can answer before its own checks (see access.ts). */
const GATE_CODES: readonly ErrorCode[] = [
  'HEARTH_E_API_KEY',
  'HEARTH_E_ORIGIN',
  'HEARTH_E_RATE_LIMIT',
];

/** Security of the gated routes: a site key when sites are configured, nothing otherwise. */
const SITE_KEY_SECURITY: Json = [{ siteKey: [] }, {}];

const UPDATE_FORMAT_DESCRIPTION = `A clipped model delta in Hearth's binary update format, version ${UPDATE_FORMAT_VERSION}. All integers little-endian.

| offset | size | field | meaning |
|---|---|---|---|
| 0 | 4 | magic | ASCII "HRTU" |
| 4 | 1 | format | format version, currently ${UPDATE_FORMAT_VERSION} |
| 5 | 1 | dtype | 1 = float32, 2 = float16 (IEEE 754 binary16) |
| 6 | 2 | reserved | must be 0 |
| 8 | 4 | baseVersion | u32, the global model version the delta is relative to (must be the current one) |
| 12 | 4 | layoutHash | u32, the manifest's layoutHash |
| 16 | 4 | paramCount | u32, number of payload values (the length of the base version's update layout) |
| 20 | 4 | examples | u32, local training examples (the server clamps it to maxExamples) |
| 24 | 4 | clipNorm | f32, the bound S the device clipped to (positive, finite) |
| 28 | 16 | roundToken | the single-use token from POST /v1/rounds/join, as 16 bytes |
| ${UPDATE_HEADER_BYTES} | - | payload | paramCount values in dtype: with \`federation.updateRows\` in the base version's manifest, the dense tensors (manifest order, item table and bias left out) then, for each named row in order, its embedding and its bias; without it, every tensor in manifest order |

The body must be exactly ${UPDATE_HEADER_BYTES} + paramCount * bytesPerValue bytes. Checks, in order: framing (magic, format, dtype, reserved bits, length), base version known, base version within the staleness bound, layout, finite values, L2 norm <= S (with 1e-3 relative slack for float16 rounding), round token. An update on an older version is carried into the current version's layout: the rows both name keep their values, the rows the current one does not name are dropped. The body limit is the header plus a float32 payload of the current model.`;

/** The operator dashboard: a page, its script, and uPlot (served from node_modules). */
const DASHBOARD_PATHS: Record<string, Record<string, JsonObject>> = Object.fromEntries(
  (
    [
      ['/dashboard', 'getDashboard', 'The dashboard page', 'text/html'],
      [
        '/dashboard/dashboard.js',
        'getDashboardScript',
        "The dashboard's script",
        'text/javascript',
      ],
      [
        '/dashboard/uplot.esm.js',
        'getDashboardUplot',
        'uPlot, the chart library',
        'text/javascript',
      ],
      ['/dashboard/uplot.min.css', 'getDashboardUplotCss', "uPlot's stylesheet", 'text/css'],
    ] as const
  ).map(([path, operationId, summary, type]) => [
    path,
    {
      get: {
        operationId,
        summary,
        responses: {
          '200': { description: summary, content: { [type]: { schema: { type: 'string' } } } },
          ...errors(),
        },
      },
    },
  ]),
);

const PATHS: Record<string, Record<string, JsonObject>> = {
  '/healthz': {
    get: {
      operationId: 'health',
      summary: 'Liveness and the current model version',
      responses: {
        '200': json(
          {
            type: 'object',
            required: ['ok', 'version'],
            properties: { ok: { const: true }, version: { type: 'integer', minimum: 1 } },
          },
          'The server is up',
        ),
        ...errors(),
      },
    },
  },
  '/v1/model': {
    get: {
      operationId: 'getModel',
      summary: 'The current model manifest',
      description:
        'Revalidated on every start (Cache-Control: no-cache). The ETag covers the version and the federation settings.',
      parameters: [{ $ref: '#/components/parameters/IfNoneMatch' }],
      responses: {
        '200': { ...json(ref('ModelManifest'), 'The manifest'), headers: ETAG_HEADER },
        '304': { description: 'The cached manifest is current', headers: ETAG_HEADER },
        ...errors('HEARTH_E_MODEL_NOT_FOUND'),
      },
    },
  },
  '/v1/model/{version}/weights': {
    get: {
      operationId: 'getWeights',
      summary: "A version's weights",
      description:
        'The tensors of the manifest in order, each flattened row-major, little-endian, in `dtype` (float32 without it; int8: a float32 scale per row, then one int8 per value, protocol/weights-codec.ts). The served manifest names the URL with the configured dtype. Immutable.',
      parameters: [
        {
          name: 'version',
          in: 'path',
          required: true,
          schema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
        },
        {
          name: 'dtype',
          in: 'query',
          required: false,
          schema: { enum: ['float32', 'float16', 'int8'] },
        },
        { $ref: '#/components/parameters/IfNoneMatch' },
      ],
      responses: {
        '200': {
          description: 'The weights',
          headers: ETAG_HEADER,
          content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        '304': { description: 'The cached weights are current', headers: ETAG_HEADER },
        ...errors('HEARTH_E_MODEL_NOT_FOUND'),
      },
    },
  },
  '/v1/catalog': {
    get: {
      operationId: 'getCatalog',
      summary: "The site's catalogue",
      description:
        'The items devices may be shown, apart from the weights: a changed title never re-downloads the model. Revalidated (Cache-Control: no-cache); the ETag is "c<version>-<digest>".',
      parameters: [{ $ref: '#/components/parameters/IfNoneMatch' }],
      responses: {
        '200': { ...json(ref('Catalog'), 'The catalogue'), headers: ETAG_HEADER },
        '304': { description: 'The cached catalogue is current', headers: ETAG_HEADER },
        ...errors('HEARTH_E_CATALOG_NOT_FOUND'),
      },
    },
    put: {
      operationId: 'putCatalog',
      summary: 'Replace the catalogue (operator)',
      description: `Needs the operator token (HEARTH_OPERATOR_TOKEN) as a bearer token; a site key never works. The body is a catalogue in any of the formats --catalog reads, named by its content type or recognised from its first characters: a JSON array of items, JSON Lines, CSV or TSV with a header (id, title, url, image, published, category, tags), RSS 2.0 or 1.0, Atom, JSON Feed, or a sitemap. At most ${CATALOG_LIMITS.bytes} bytes and ${CATALOG_LIMITS.items} items. A refused body leaves the stored catalogue as it was; the same items again store no new version.`,
      security: [{ operatorToken: [] }],
      requestBody: {
        required: true,
        content: Object.fromEntries(
          [
            'application/json',
            'application/x-ndjson',
            'text/csv',
            'text/tab-separated-values',
            'application/feed+json',
            'application/rss+xml',
            'application/atom+xml',
            'application/xml',
          ].map((type) => [type, { schema: { type: 'string' } }]),
        ),
      },
      responses: {
        '200': {
          ...json(
            {
              type: 'object',
              required: ['version', 'items', 'changed'],
              properties: {
                version: { type: 'integer', minimum: 1 },
                items: { type: 'integer', minimum: 1 },
                changed: { type: 'boolean' },
                modelVersion: {
                  type: 'integer',
                  minimum: 2,
                  description:
                    'The model version published at once with a row for each item the model lacked (absent when it lacked none)',
                },
              },
            },
            'The catalogue version now served, its item count, whether this request changed it, and the model version that gave new items their rows',
          ),
          headers: ETAG_HEADER,
        },
        ...errors(
          'HEARTH_E_OPERATOR_TOKEN',
          'HEARTH_E_RATE_LIMIT',
          'HEARTH_E_CATALOG',
          'HEARTH_E_CATALOG_TOO_LARGE',
        ),
      },
    },
  },
  '/v1/privacy': {
    get: {
      operationId: 'getPrivacy',
      summary: 'The privacy accountant',
      responses: { '200': json(ref('PrivacyReport'), 'Cumulative (epsilon, delta)'), ...errors() },
    },
  },
  '/metrics': {
    get: {
      operationId: 'getMetrics',
      summary: 'Prometheus metrics',
      description:
        "Needs the operator token (its counters move with each single upload). Prometheus text exposition 0.0.4: model version, rounds published and abandoned, updates and round tokens, min cohort, clip norm, epsilon spent (+Inf with noise off), budget exhaustion, and this process's requests by route and status and error replies by code.",
      security: [{ operatorToken: [] }],
      responses: {
        '200': {
          description: 'Exposition text',
          content: { 'text/plain': { schema: { type: 'string' } } },
        },
        ...errors('HEARTH_E_OPERATOR_TOKEN'),
      },
    },
  },
  '/v1/stats': {
    get: {
      operationId: 'getStats',
      summary: "The dashboard's data",
      description:
        'With the operator token: the newest rounds with their participants and received update norms (before re-clipping), a norm histogram, cumulative epsilon after each published round, and HR@20 per version when the server has a validation set (--validation). Without it (view "public"): only published rounds, each an aggregate of at least m updates, without norms or opening times and with publication times to the hour, so that no single upload\'s norm or timing can be read off.',
      responses: {
        '200': json(ref('Stats'), 'Round, norm, privacy and quality series'),
        ...errors(),
      },
    },
  },
  ...DASHBOARD_PATHS,
  '/v1/openapi.json': {
    get: {
      operationId: 'getOpenApi',
      summary: 'This document',
      responses: { '200': json({ type: 'object' }, 'The OpenAPI 3.1 document'), ...errors() },
    },
  },
  '/v1/rounds/join': {
    post: {
      operationId: 'joinRound',
      summary: 'Join the collecting round and get a single-use round token',
      security: SITE_KEY_SECURITY,
      requestBody: {
        required: false,
        description: 'No body, an empty body, or any JSON value (ignored).',
        content: { 'application/json': { schema: {} } },
      },
      responses: {
        '200': json(ref('JoinReply'), 'A token for the collecting round'),
        ...errors(
          ...GATE_CODES,
          'HEARTH_E_BAD_REQUEST',
          'HEARTH_E_CONTENT_TYPE',
          'HEARTH_E_UPDATE_TOO_LARGE',
          'HEARTH_E_PRIVACY_BUDGET',
          'HEARTH_E_AGGREGATION_MODE',
        ),
      },
    },
  },
  '/v1/secure/join': {
    post: {
      operationId: 'joinSecureRound',
      summary: 'Join the forming secure aggregation round (--aggregation secure)',
      description:
        'The round forms at --secure-cohort devices, or at --secure-join-seconds with at least m. The secret authenticates the device on every step (header x-hearth-device). With several instances (--instance-url), one round forms at a time across them: an instance forwards the join to the one whose round is forming.',
      security: SITE_KEY_SECURITY,
      responses: {
        '200': json(ref('SecureJoinReply'), 'A place in the forming round'),
        ...errors(
          ...GATE_CODES,
          'HEARTH_E_PRIVACY_BUDGET',
          'HEARTH_E_AGGREGATION_MODE',
          'HEARTH_E_JOIN_BUDGET',
        ),
      },
    },
  },
  '/v1/secure/rounds/{round}/{step}': {
    post: {
      operationId: 'secureRoundStep',
      summary: 'One step of a secure aggregation round (SecAgg+)',
      description:
        "Send steps (keys, shares, masked, unmask) carry one message in the binary wire format of protocol/secagg/wire.ts and answer 202. Fetch steps (params, roster, forwarded, request, result) carry no body; they wait up to 20 s for the stage before them to close and answer 204 when it has not (ask again), else the JSON round parameters (params), the JSON result (result) or a wire-format body. Each stage closes when every device expected has sent, or at --secure-stage-seconds; a device that has not sent by then has dropped out. A round lives on the instance that formed it (its id begins with that instance's id); another instance forwards the request there, and answers HEARTH_E_SECAGG_ROUND when that instance is gone.",
      security: SITE_KEY_SECURITY,
      parameters: [
        {
          name: 'round',
          in: 'path',
          required: true,
          schema: { type: 'string', pattern: '^[0-9a-f]{32}$' },
        },
        {
          name: 'step',
          in: 'path',
          required: true,
          schema: { type: 'string', enum: [...SECURE_STEPS] },
        },
        {
          name: SECURE_DEVICE_HEADER,
          in: 'header',
          required: true,
          schema: { type: 'string', pattern: '^[0-9a-f]{32}$' },
        },
      ],
      requestBody: {
        required: false,
        content: { [SECAGG_CONTENT_TYPE]: { schema: { type: 'string', format: 'binary' } } },
      },
      responses: {
        '200': {
          description: 'The answer of a fetch step',
          content: {
            'application/json': { schema: {} },
            [SECAGG_CONTENT_TYPE]: { schema: { type: 'string', format: 'binary' } },
          },
        },
        '202': json({ type: 'object' }, 'A send step accepted'),
        '204': { description: 'Not yet: the stage before this step is still open' },
        ...errors(
          ...GATE_CODES,
          'HEARTH_E_NOT_FOUND',
          'HEARTH_E_SECAGG_ROUND',
          'HEARTH_E_SECAGG_STAGE',
          'HEARTH_E_SECAGG_MESSAGE',
          'HEARTH_E_SECAGG_THRESHOLD',
          'HEARTH_E_CONTENT_TYPE',
          'HEARTH_E_UPDATE_TOO_LARGE',
          'HEARTH_E_AGGREGATION_MODE',
        ),
      },
    },
  },
  '/v1/updates': {
    post: {
      operationId: 'postUpdate',
      summary: 'Submit a clipped model delta',
      description:
        'Stored durably before the 202; the update that completes the round (minimum cohort m) also aggregates it into the next version. A round older than the round deadline with fewer than m updates is abandoned and its tokens refused.',
      security: SITE_KEY_SECURITY,
      requestBody: {
        required: true,
        description: UPDATE_FORMAT_DESCRIPTION,
        content: { [UPDATE_CONTENT_TYPE]: { schema: { type: 'string', format: 'binary' } } },
      },
      responses: {
        '202': json(ref('UpdateReply'), 'Accepted and stored'),
        ...errors(
          ...GATE_CODES,
          'HEARTH_E_UPDATE_TRUNCATED',
          'HEARTH_E_UPDATE_TOO_LARGE',
          'HEARTH_E_UPDATE_MAGIC',
          'HEARTH_E_UPDATE_FORMAT_VERSION',
          'HEARTH_E_UPDATE_DTYPE',
          'HEARTH_E_UPDATE_HEADER',
          'HEARTH_E_UPDATE_SHAPE',
          'HEARTH_E_UPDATE_NONFINITE',
          'HEARTH_E_UPDATE_NORM',
          'HEARTH_E_UPDATE_VERSION_UNKNOWN',
          'HEARTH_E_UPDATE_STALE',
          'HEARTH_E_JOIN_BUDGET',
          'HEARTH_E_ROUND_TOKEN',
          'HEARTH_E_CONTENT_TYPE',
          'HEARTH_E_BAD_REQUEST',
          'HEARTH_E_PRIVACY_BUDGET',
          'HEARTH_E_AGGREGATION_MODE',
        ),
      },
    },
  },
};

/** HEAD twins of the GET operations: fastify answers HEAD on every GET route. */
function withHeadOperations(
  paths: Record<string, Record<string, JsonObject>>,
): Record<string, Record<string, JsonObject>> {
  return Object.fromEntries(
    Object.entries(paths).map(([path, item]) => {
      const get = item.get;
      if (!get) return [path, item];
      const responses = Object.fromEntries(
        Object.entries(get.responses as Record<string, JsonObject>).map(([status, r]) => [
          status,
          { description: r.description as string },
        ]),
      );
      const head: JsonObject = {
        operationId: `${get.operationId as string}Head`,
        summary: `Headers of GET ${path}`,
        ...(get.parameters ? { parameters: get.parameters } : {}),
        responses,
      };
      return [path, { ...item, head }];
    }),
  );
}

/** The document served at `GET /v1/openapi.json`. */
export const OPENAPI_DOCUMENT: JsonObject = {
  openapi: '3.1.0',
  info: {
    title: 'Hearth aggregation server',
    version: '1',
    description:
      'Federated aggregation for Hearth: devices download the global model, join a round, and post clipped deltas. Every error reply is `{ error: { code, message } }` with a stable code from the catalogue; clients branch on `code`. CORS preflights (OPTIONS on any path) are answered for allowed origins.',
  },
  paths: withHeadOperations(PATHS),
  components: {
    securitySchemes: {
      operatorToken: {
        type: 'http',
        scheme: 'bearer',
        description:
          'The operator token (HEARTH_OPERATOR_TOKEN or --operator-token-file); only PUT /v1/catalog takes it.',
      },
      siteKey: {
        type: 'apiKey',
        in: 'header',
        name: SITE_KEY_HEADER,
        description:
          "Required on the POST routes only when the server has sites configured (--config); an Origin header must then be one of that site's origins.",
      },
    },
    parameters: {
      IfNoneMatch: {
        name: 'If-None-Match',
        in: 'header',
        required: false,
        schema: { type: 'string' },
      },
    },
    headers: {
      RetryAfter: {
        description: 'Seconds until the client may try again',
        schema: { type: 'integer', minimum: 1 },
      },
    },
    schemas: {
      CatalogItem: {
        type: 'object',
        required: ['id', 'title', 'url'],
        properties: {
          id: { type: 'string', maxLength: CATALOG_LIMITS.id },
          title: { type: 'string', maxLength: CATALOG_LIMITS.title },
          url: { type: 'string', description: 'absolute http(s) URL, or a path on the site' },
          image: { type: 'string' },
          published: { type: 'string', format: 'date-time' },
          category: { type: 'string', maxLength: CATALOG_LIMITS.category },
          tags: { type: 'array', items: { type: 'string' }, maxItems: CATALOG_LIMITS.tags },
        },
      },
      Catalog: {
        type: 'object',
        required: ['version', 'updatedAt', 'items'],
        properties: {
          version: { type: 'integer', minimum: 1 },
          updatedAt: { type: 'string', format: 'date-time' },
          items: { type: 'array', items: ref('CatalogItem') },
        },
      },
      ErrorReply: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: { type: 'string', enum: [...SERVER_ERROR_CODES] },
              message: { type: 'string' },
            },
          },
        },
      },
      SecureJoinReply: {
        type: 'object',
        required: ['round', 'device', 'secret'],
        properties: {
          round: { type: 'string', pattern: '^[0-9a-f]{32}$' },
          device: { type: 'integer', minimum: 1 },
          secret: { type: 'string', pattern: '^[0-9a-f]{32}$' },
        },
      },
      JoinReply: {
        type: 'object',
        required: ['token', 'version', 'round'],
        properties: {
          token: { type: 'string', pattern: '^[0-9a-f]{32}$' },
          version: { type: 'integer', minimum: 1 },
          round: { type: 'integer', minimum: 1 },
        },
      },
      UpdateReply: {
        type: 'object',
        required: ['accepted', 'round', 'received', 'version'],
        properties: {
          accepted: { const: true },
          round: { type: 'integer', minimum: 1 },
          received: { type: 'integer', minimum: 1, description: 'Updates in the round so far' },
          version: { type: 'integer', minimum: 1, description: 'Current version afterwards' },
        },
      },
      ModelManifest: {
        type: 'object',
        required: [
          'format',
          'version',
          'createdAt',
          'dims',
          'tensors',
          'layoutHash',
          'weights',
          'itemIds',
          'popular',
          'federation',
        ],
        properties: {
          format: { const: 'hearth-model/1' },
          version: { type: 'integer', minimum: 1 },
          createdAt: { type: 'string', format: 'date-time' },
          dims: {
            type: 'object',
            properties: {
              items: { type: 'integer' },
              embedding: { type: 'integer' },
              hidden: { type: 'integer' },
              maxSessionLength: { type: 'integer' },
            },
          },
          tensors: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                shape: { type: 'array', items: { type: 'integer' } },
              },
            },
          },
          layoutHash: { type: 'integer', description: 'u32; updates must carry it' },
          weights: {
            type: 'object',
            properties: {
              url: { type: 'string' },
              dtype: { enum: ['float32', 'float16', 'int8'] },
              byteLength: { type: 'integer' },
            },
          },
          itemIds: { type: 'array', items: { type: 'string' } },
          popular: { type: 'array', items: { type: 'integer' } },
          recent: {
            type: 'array',
            items: { type: 'integer' },
            description: 'Optional: indices trending in the newest training data (cold start)',
          },
          federation: {
            type: 'object',
            properties: {
              clipNorm: { type: 'number', description: 'L2 bound S' },
              minCohort: { type: 'integer', description: 'updates per round, m' },
              maxExamples: { type: 'integer' },
              sampleRate: {
                type: 'number',
                description:
                  'q: each device takes part in a round with this probability (its own coin)',
              },
              maxStaleness: {
                type: 'integer',
                minimum: 0,
                description:
                  's: updates computed on a version at most s behind the current one are accepted',
              },
              noiseMultiplier: {
                type: 'number',
                minimum: 0,
                description:
                  'z: the noise of each published round over its sensitivity; a device prices the rounds it took part in with it',
              },
              delta: { type: 'number', description: 'the delta epsilon is reported at' },
              updateRows: {
                type: 'array',
                items: { type: 'integer', minimum: 1 },
                description:
                  'Optional (--update-rows): the ascending item rows an update on this version carries after the dense tensors, chosen from public data only; absent: the whole model',
              },
            },
          },
          training: { type: 'object' },
        },
      },
      Stats: {
        type: 'object',
        required: [
          'view',
          'clipNorm',
          'minCohort',
          'noise',
          'rounds',
          'norms',
          'epsilon',
          'hitRate',
        ],
        properties: {
          view: {
            enum: ['operator', 'public'],
            description:
              'public: published rounds only, no norms, no opening times, publication times to the hour',
          },
          clipNorm: { type: 'number' },
          minCohort: { type: 'integer' },
          noise: { enum: ['on', 'off'] },
          rounds: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                round: { type: 'integer' },
                status: { enum: ['collecting', 'published', 'abandoned'] },
                openedAt: { type: ['string', 'null'] },
                publishedAt: { type: ['string', 'null'] },
                publishedVersion: { type: ['integer', 'null'] },
                participants: { type: 'integer' },
                clippedFraction: {
                  type: ['number', 'null'],
                  description: 'share of updates received with a norm above S',
                },
                medianNorm: { type: ['number', 'null'] },
              },
            },
          },
          norms: {
            type: ['object', 'null'],
            description: 'null in the public view',
            properties: {
              count: { type: 'integer' },
              clippedFraction: { type: ['number', 'null'] },
              edges: { type: 'array', items: { type: 'number' } },
              counts: { type: 'array', items: { type: 'integer' } },
            },
          },
          epsilon: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                round: { type: 'integer' },
                version: { type: 'integer' },
                publishedAt: { type: ['string', 'null'] },
                epsilon: { type: ['number', 'null'], description: 'null when infinite' },
              },
            },
          },
          hitRate: {
            type: 'object',
            properties: {
              k: { type: 'integer' },
              configured: { type: 'boolean' },
              versions: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    version: { type: 'integer' },
                    hr: { type: ['number', 'null'] },
                  },
                },
              },
            },
          },
        },
      },
      PrivacyReport: {
        type: 'object',
        properties: {
          noise: { enum: ['on', 'off'] },
          noiseMultiplier: { type: 'number' },
          sampleRate: { type: 'number', description: 'q, as in the manifest' },
          maxStaleness: { type: 'integer', description: 's (--max-staleness)' },
          effectiveSampleRate: {
            type: 'number',
            description: 'q_eff = min(1, (s + 1) q): the rate each round is charged at',
          },
          delta: { type: 'number' },
          clipNorm: { type: 'number' },
          minCohort: { type: 'integer' },
          rounds: { type: 'integer' },
          epsilon: { type: ['number', 'null'], description: 'null when infinite (noise off)' },
          bestOrder: { type: ['number', 'null'] },
          epsilonBudget: { type: ['number', 'null'], description: 'null when no budget' },
          exhausted: { type: 'boolean' },
        },
      },
    },
  },
};
