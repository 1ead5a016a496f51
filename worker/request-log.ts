/**
 * The privacy ledger's request log: every request the engine's worker sends goes through one
 * wrapped `fetch` (installed by worker/index.ts), which records when it went, what it was for, its
 * URL and how many bytes went each way (never a body) once its reply has been read. What a visitor
 * is shown is therefore what the worker sent, not what the code meant to send.
 */
import type { RequestKind, SentRequest } from '../protocol/api.js';

type Fetch = typeof fetch;

/** What a request to `url` was for, from its path (protocol/routes.ts). */
export function requestKind(url: string): RequestKind {
  const path = new URL(url, 'http://base.invalid/').pathname;
  if (/\/v1\/model\/?$/.test(path)) return 'model';
  if (/\/v1\/model\/\d+\/weights$/.test(path)) return 'weights';
  if (/\/v1\/catalog$/.test(path)) return 'catalog';
  if (/\/v1\/rounds\/join$/.test(path)) return 'join';
  if (/\/v1\/updates$/.test(path)) return 'update';
  if (/\/v1\/secure\//.test(path)) return 'secure';
  return 'other';
}

const encoder = new TextEncoder();

/** Bytes of a request body of the kinds the worker sends (strings, byte arrays, blobs). */
export function bodyBytes(body: BodyInit | null | undefined): number {
  if (body === null || body === undefined) return 0;
  if (typeof body === 'string') return encoder.encode(body).length;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength;
  if (typeof Blob === 'function' && body instanceof Blob) return body.size;
  if (body instanceof URLSearchParams) return encoder.encode(body.toString()).length;
  // FormData and streams: their size is not known before sending; the worker sends neither.
  return 0;
}

/** Records each request made through `wrap`'s fetch into `sink`. */
export class RequestLog {
  /** Recordings whose reply is still being read or written. */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly sink: (request: SentRequest) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {}

  /** A fetch that behaves as `inner` does and records every call. */
  wrap(inner: Fetch): Fetch {
    return async (input, init) => {
      const request = input instanceof Request ? input : undefined;
      const url = request?.url ?? String(input instanceof URL ? input.href : input);
      const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
      const sent = init?.body !== undefined ? bodyBytes(init.body) : 0;
      const entry = { ts: this.now(), kind: requestKind(url), method, url, sent };
      let response: Response;
      try {
        response = await inner(input, init);
      } catch (error) {
        this.track(Promise.resolve({ ...entry, received: 0, status: 0 }));
        throw error;
      }
      // The caller reads its own copy; the size comes from a clone read alongside it.
      const received = response.body
        ? response
            .clone()
            .arrayBuffer()
            .then(
              (bytes) => bytes.byteLength,
              () => 0,
            )
        : Promise.resolve(0);
      this.track(received.then((n) => ({ ...entry, received: n, status: response.status })));
      return response;
    };
  }

  /** Resolves once every request completed so far is in the log. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }

  private track(entry: Promise<SentRequest>): void {
    const recording: Promise<void> = entry
      .then((request) => this.sink(request))
      .catch(() => undefined)
      .finally(() => this.pending.delete(recording));
    this.pending.add(recording);
  }
}
